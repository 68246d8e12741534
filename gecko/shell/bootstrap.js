// geckohost worker bootstrap: runs in the dedicated Worker, receives the
// private control port, then runs the worker source as a classic script.
"use strict";
(() => {
  let port = null;
  let started = false;
  const realClose = self.close.bind(self);
  const realImport = self.importScripts.bind(self);
  const markName = "__gh_" + Math.random().toString(36).slice(2) + Date.now().toString(36);

  function describe(e) {
    if (e && typeof e === "object") {
      let s = (e.name ? e.name + ": " : "") + (e.message !== undefined ? e.message : String(e));
      if (e.lineNumber) s += " (line " + e.lineNumber + (e.columnNumber ? ", column " + e.columnNumber : "") + ")";
      return s;
    }
    try { return "uncaught " + String(e); } catch (_) { return "uncaught exception"; }
  }

  function run(code, url) {
    self.importScripts = function (...urls) {
      return realImport(...urls.map((u) => new URL(String(u), url).href));
    };
    self.close = function () {
      try { port.postMessage({ t: "closed" }); } catch (_) {}
      realClose();
    };
    Object.defineProperty(self, markName, {
      configurable: true,
      value: () => { started = true; },
    });
    try {
      (0, eval)(markName + "();" + code + "\n//# sourceURL=" + url);
    } catch (e) {
      const syntax = !started && e instanceof SyntaxError;
      return { errno: syntax ? 202 : 203, reason: describe(e) };
    } finally {
      delete self[markName];
    }
    return { ok: true };
  }

  self.onmessage = (e) => {
    self.onmessage = null;
    port = e.data.port;
    port.onmessage = (m) => {
      const d = m.data;
      if (d.t === "run") {
        port.postMessage(run(d.code, d.url));
      }
    };
    port.postMessage({ ready: true });
  };
})();
