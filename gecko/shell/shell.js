// geckohost worker shell: one tab = one worker. Go drives it through
// window.gh (script.callFunction) and it reports to Go through the channel
// given to gh.init (script.message events), one JSON string per event:
//   {t:"ready"} {t:"answer",sdp} {t:"error",errno,reason} {t:"cand",c}
//   {t:"open"} {t:"end",reason} {t:"log",msg}
"use strict";
(() => {
  let emit = null;
  let pc = null;
  let worker = null;
  let port = null;
  let dc = null;
  let cfg = null;
  let ended = false;
  let started = false;
  let lastActivity = 0;
  let idleTimer = null;
  const outbox = [];
  let runResolve = null;

  function send(o) { emit(JSON.stringify(o)); }

  function isLoopback(cand) {
    // candidate:foundation component transport priority address port typ ...
    const f = cand.split(" ");
    if (f.length < 8) return false;
    const a = f[4];
    return a === "127.0.0.1" || a === "::1" || a.startsWith("127.");
  }

  function end(reason) {
    if (ended) return;
    ended = true;
    if (idleTimer) clearInterval(idleTimer);
    send({ t: "end", reason });
    try { if (dc) dc.close(); } catch (_) {}
    try { if (pc) pc.close(); } catch (_) {}
    try { if (worker) worker.terminate(); } catch (_) {}
  }

  function touch() { lastActivity = performance.now(); }

  function forward(data) {
    if (dc && dc.readyState === "open") {
      try { dc.send(data); } catch (e) { send({ t: "log", msg: "dc.send: " + e }); }
    } else {
      outbox.push(data);
    }
  }

  function bridge(ch) {
    dc = ch;
    dc.binaryType = "arraybuffer";
    dc.onmessage = (e) => { touch(); worker.postMessage(e.data); };
    dc.onclose = () => end("peer-closed");
    const opened = () => {
      while (outbox.length) dc.send(outbox.shift());
      touch();
      if (cfg.idleMs > 0) {
        idleTimer = setInterval(() => {
          if (performance.now() - lastActivity >= cfg.idleMs) end("idle");
        }, Math.max(50, Math.min(cfg.idleMs / 4, 30000)));
      }
      send({ t: "open" });
    };
    if (dc.readyState === "open") opened(); else dc.onopen = opened;
  }

  async function init(channel, config) {
    emit = channel;
    cfg = config;
    const cert = await RTCPeerConnection.generateCertificate({ name: "ECDSA", namedCurve: "P-256" });
    const pcConfig = { certificates: [cert], bundlePolicy: "max-bundle" };
    if (cfg.iceServers && cfg.iceServers.length) pcConfig.iceServers = [{ urls: cfg.iceServers }];
    pc = new RTCPeerConnection(pcConfig);
    pc.onicecandidate = (e) => {
      if (ended) return;
      if (!e.candidate) { send({ t: "cand", c: { candidate: "" } }); return; }
      if (!e.candidate.candidate) return; // end of a generation; null follows
      const c = e.candidate.toJSON();
      if (cfg.loopback && !isLoopback(c.candidate)) return;
      send({ t: "cand", c });
    };
    pc.ondatachannel = (e) => { if (!dc) bridge(e.channel); };
    pc.onconnectionstatechange = () => {
      const s = pc.connectionState;
      if (s === "failed" || s === "closed") end("peer-closed");
    };
    worker = new Worker("bootstrap.js");
    worker.onmessage = (e) => { touch(); forward(e.data); };
    worker.onerror = (e) => {
      // Errors after the first run: log them; the first run reports its own.
      send({ t: "log", msg: "worker error: " + (e.message || "") + " line " + (e.lineno || 0) });
      e.preventDefault();
    };
    const mc = new MessageChannel();
    port = mc.port1;
    await new Promise((resolve) => {
      port.onmessage = (m) => {
        const d = m.data;
        if (d.ready) { resolve(); return; }
        if (d.t === "closed") { end("worker-closed"); return; }
        if (runResolve) { const r = runResolve; runResolve = null; r(d); }
      };
      worker.postMessage({ port: mc.port2 }, [mc.port2]);
    });
    return "ready";
  }

  async function start(code, url, offer) {
    if (started) return;
    started = true;
    const t0 = performance.now();
    const tm = { entry: Date.now() };
    const ran = new Promise((resolve) => { runResolve = resolve; }).then((r) => { tm.run = performance.now() - t0; return r; });
    port.postMessage({ t: "run", code, url });
    const applied = pc.setRemoteDescription({ type: "offer", sdp: offer }).then(
      () => { tm.offer = performance.now() - t0; return null; },
      (e) => ({ errno: 204, reason: "offer rejected: " + (e && e.message ? e.message : String(e)) }),
    );
    const [r, offerErr] = await Promise.all([ran, applied]);
    if (!r.ok) { send({ t: "error", errno: r.errno, reason: r.reason }); ended = true; return; }
    if (offerErr) { send({ t: "error", errno: offerErr.errno, reason: offerErr.reason }); ended = true; return; }
    try {
      const answer = await pc.createAnswer();
      tm.create = performance.now() - t0;
      await pc.setLocalDescription(answer);
      tm.local = performance.now() - t0;
      tm.sent = Date.now();
      send({ t: "answer", sdp: pc.localDescription.sdp, tm });
    } catch (e) {
      send({ t: "error", errno: 204, reason: "answer failed: " + (e && e.message ? e.message : String(e)) });
      ended = true;
    }
  }

  async function addCandidate(json) {
    if (ended) return;
    const c = JSON.parse(json);
    if (!c.candidate) {
      await pc.addIceCandidate(null).catch(() => pc.addIceCandidate({ candidate: "" }));
      return;
    }
    if (cfg.loopback && !isLoopback(c.candidate)) return;
    if (c.sdpMid == null && c.sdpMLineIndex == null) c.sdpMLineIndex = 0;
    await pc.addIceCandidate(c);
  }

  async function addCandidates(json) {
    for (const c of JSON.parse(json)) {
      try { await addCandidate(JSON.stringify(c)); } catch (e) { send({ t: "log", msg: "addIceCandidate: " + e }); }
    }
  }

  Object.defineProperty(window, "gh", {
    value: Object.freeze({ init, start, addCandidate, addCandidates, close: () => end("closed") }),
  });
})();
