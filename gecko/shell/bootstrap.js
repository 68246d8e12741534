// geckohost worker bootstrap: runs in the dedicated Worker, receives the
// private control port, then runs the worker source as a classic script.
"use strict";
(() => {
  let port = null;
  let closeKey = null; // names the close marker; from the page
  let started = false;
  const realClose = self.close.bind(self);
  const realPost = self.postMessage.bind(self);
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

  // closeNow ends the worker. The close marker travels on the same channel
  // as the worker's messages (after all of them), so that the page sends
  // everything the worker posted before it closes the data channel.
  let closed = false;
  function closeNow() {
    if (!closed) {
      closed = true;
      try { realPost({ [closeKey]: true }); } catch (_) {}
    }
    realClose();
  }

  function run(code, url) {
    // Nested workers are refused: a worker could otherwise spawn workers
    // without bound (each a thread in its token's content process, and
    // every one counted in Firefox's per-domain worker cap).
    delete self.Worker;
    delete self.SharedWorker;
    self.importScripts = function (...urls) {
      return realImport(...urls.map((u) => new URL(String(u), url).href));
    };
    self.close = function () { closeNow(); };
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
    closeKey = e.data.closeKey;
    port.onmessage = (m) => {
      const d = m.data;
      if (d.t === "ping") {
        port.postMessage({ pong: true }); // the worker is back in its event loop
      } else if (d.t === "run") {
        port.postMessage(run(d.code, d.url));
      } else if (d.t === "close") {
        closeNow(); // the page ends the worker (idle): after what it posted
      }
    };
    port.postMessage({ ready: true });
  };
})();
