// geckohost worker bootstrap: runs in the dedicated Worker, receives the
// private control port, then runs the worker source as a classic script.
"use strict";
(() => {
  let port = null;
  let closeKey = null; // names the close marker; from the page
  const realClose = self.close.bind(self);
  const realPost = self.postMessage.bind(self);
  const realImport = self.importScripts.bind(self);

  // describe is an error's reason: "Name: message (line L, column C)",
  // the position in the user's source (1-based). A parse error at the end
  // of input is placed at the source's end, not on the sourceURL comment
  // the bootstrap appends (see run).
  //
  // Engine differences (this file's only ones): Firefox's errors carry
  // lineNumber and columnNumber, and their stacks read "fn@url:line:col";
  // V8's (Chromium) carry neither, and their stacks read "    at fn
  // (url:line:col)" or "    at url:line:col". A parse error in V8 has no
  // position at all: the Chromium engine adds it (Runtime.compileScript).
  function describe(e, code, url) {
    if (e && typeof e === "object") {
      let s = (e.name ? e.name + ": " : "") + (e.message !== undefined ? e.message : String(e));
      let line = e.lineNumber, col = e.columnNumber;
      if (line === undefined) [line, col] = v8Position(e, url);
      if (line && typeof code === "string") {
        const lines = code.split(/\r\n|[\n\r\u2028\u2029]/);
        if (line > lines.length) { line = lines.length; col = lines[line - 1].length + 1; }
      }
      if (line) s += " (line " + line + (col ? ", column " + col : "") + ")";
      return s;
    }
    try { return "uncaught " + String(e); } catch (_) { return "uncaught exception"; }
  }

  // parseError reports whether e was thrown while the source was parsed
  // (a 202), not while it ran (a 203, even a SyntaxError of JSON.parse or
  // of a nested eval): a parse error's stack starts in run itself, a run's
  // in the user's source (or deeper).
  function parseError(e, url) {
    if (!(e instanceof SyntaxError)) return false;
    const stack = String(e.stack || "");
    if (stack.includes("\n    at ")) return v8Position(e, url)[0] === undefined; // V8: no frame in the source
    const top = stack.split("\n")[0];
    return top.startsWith("run@" + self.location.href + ":");
  }

  // v8Position is [line, column] of the first frame of V8's stack in the
  // user's source (url), or [undefined, undefined].
  function v8Position(e, url) {
    for (const l of String(e.stack || "").split("\n").slice(1)) {
      const i = l.indexOf(url + ":");
      if (i < 0) continue;
      const m = /:(\d+):(\d+)\)?$/.exec(l.slice(i + url.length));
      if (m) return [Number(m[1]), Number(m[2])];
    }
    return [undefined, undefined];
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
    // The source is evaluated exactly as fetched (nothing before it), so
    // that positions in errors and stacks are those of the user's file.
    try {
      (0, eval)(code + "\n//# sourceURL=" + url);
    } catch (e) {
      return { errno: parseError(e, url) ? 202 : 203, reason: describe(e, code, url) };
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
