// geckohost worker shell: one page hosts many workers. Go drives it through
// window.gh (script.callFunction) and it reports to Go through the channel
// given to gh.init (script.message events), one JSON string per event; the
// events of a worker carry its id:
//   {id,t:"cand",c} {id,t:"open"} {id,t:"end",reason,detail} {id,t:"log",msg}
// (reason "ice-failed" with detail "ICE" or "DTLS": the peer connection
// failed before the data channel opened)
// gh.start itself returns {t:"answer",sdp} or {t:"error",errno,reason}: a
// command's result reaches Go sooner than an event (measured: an event
// sent right after a session opened took about 40 ms).
// and the page's own: {t:"warm",n} (pre-spawned workers ready), {t:"log",msg}.
//
// The page keeps cfg.warm "slots" ready: a bootstrap Worker already spawned
// (its control port handed over) and an RTCPeerConnection already created.
// gh.start takes one; the page refills them itself once no start is in
// flight (spawning disturbs a negotiation on the same main thread).
"use strict";
(() => {
  let emit = null;
  let cfg = null;
  let cert = null;
  const slots = []; // ready or being made: {ready: Promise, ok}
  const live = new Map(); // worker id → session
  let negotiating = 0;
  let filling = false;
  let lastWarm = -1;
  // The bootstrap's code is inlined in the page (a text/plain script) and
  // each Worker starts from a blob: URL of it: the page loads nothing but
  // itself, so the shell server answers its navigation and nothing else.
  let bootstrapURL = null;
  function bootstrap() {
    if (!bootstrapURL) {
      const code = document.getElementById("gh-bootstrap").textContent;
      bootstrapURL = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    }
    return bootstrapURL;
  }

  // Bounds of a worker's orderly end (self.close(), idle): the wait for the
  // data channel's buffer to drain, for its closing handshake, and for a
  // worker asked to close (idle) to do so.
  const DRAIN_MS = 10000;
  const CLOSE_MS = 3000;
  const STOP_MS = 2000;
  // An orderly end asked by the host (quiesce) waits for the data channel
  // to be quiet this long, at most QUIESCE_MS, before the worker is asked
  // to close: a message in flight either way is answered and delivered.
  const QUIET_MS = 500;
  const QUIESCE_MS = 3000;
  // A pre-spawned worker must be ready this long after a start needs it.
  const READY_MS = 5000;
  // The ICE watch (see watchICE in session) reports ICE failed when the
  // worker has no candidate pair, or every one failed, ICE_NOPAIR_MS after
  // it gathered its candidates (Firefox's own trickle grace period,
  // media.peerconnection.ice.trickle_grace_period: time for a
  // peer-reflexive pair to appear, or a late client candidate), or when
  // no pair has heard from the client ICE_SILENT_MS after both sides'
  // end of candidates (longer than Firefox's own STUN timeout, about
  // 7.9 s). It looks every ICE_POLL_MS.
  const ICE_NOPAIR_MS = 5000;
  const ICE_SILENT_MS = 8000;
  const ICE_POLL_MS = 250;

  function send(o) { emit(JSON.stringify(o)); }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // drainAndClose closes dc once everything sent on it has left: when its
  // buffer is empty, then close() (SCTP resets the stream only after the
  // peer received all the data sent before), and waits for the close.
  async function drainAndClose(dc) {
    const t0 = performance.now();
    while (dc.readyState === "open" && dc.bufferedAmount > 0 && performance.now() - t0 < DRAIN_MS) await sleep(5);
    if (dc.readyState === "closed") return;
    const closed = new Promise((resolve) => dc.addEventListener("close", resolve, { once: true }));
    try { dc.close(); } catch (_) { return; }
    await Promise.race([closed, sleep(CLOSE_MS)]);
  }

  function randomKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return "__gh_close_" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  function isLoopback(cand) {
    // candidate:foundation component transport priority address port typ ...
    const f = cand.split(" ");
    if (f.length < 8) return false;
    const a = f[4];
    return a === "127.0.0.1" || a === "::1" || a.startsWith("127.");
  }

  // endOfCandidates is the end-of-candidates marker the host relays: an
  // empty candidate with the sdpMid and sdpMLineIndex the worker answered
  // for (those of its last candidate, else the answer's first m-line),
  // which client libraries expect on every candidate.
  function endOfCandidates(pc, last) {
    if (last && last.sdpMid != null && last.sdpMLineIndex != null) {
      return { candidate: "", sdpMid: last.sdpMid, sdpMLineIndex: last.sdpMLineIndex };
    }
    const sdp = (pc.localDescription && pc.localDescription.sdp) || "";
    const m = /^a=mid:(\S+)/m.exec(sdp);
    return { candidate: "", sdpMid: m ? m[1] : "0", sdpMLineIndex: 0 };
  }

  // The answer waits for the worker's candidates, at most GATHER_MS after
  // setLocalDescription: with its candidates in the answer, a client
  // starts its connectivity checks as soon as it has the answer, instead of
  // waiting for trickled candidates (events reach the host later than the
  // answer, which is a command's result). Host candidates take about a
  // millisecond; candidates still gathering (STUN, TURN) trickle after.
  const GATHER_MS = 15;

  // gathered resolves once pc has gathered all its candidates, or after ms.
  function gathered(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const t = setTimeout(done, ms);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function reportWarm() {
    let n = 0;
    for (const s of slots) if (s.ok) n++;
    if (n !== lastWarm) { lastWarm = n; send({ t: "warm", n }); }
  }

  // makeSlot spawns a bootstrap Worker and creates a peer connection.
  function makeSlot() {
    // closeKey names the worker's close marker (see bootstrap.js): a
    // worker's own messages cannot be taken for it.
    const s = { ok: false, worker: null, port: null, pc: null, onPort: null, closeKey: randomKey() };
    const pcConfig = { certificates: [cert], bundlePolicy: "max-bundle" };
    if (cfg.iceServers && cfg.iceServers.length) pcConfig.iceServers = [{ urls: cfg.iceServers }];
    s.pc = new RTCPeerConnection(pcConfig);
    s.worker = new Worker(bootstrap());
    const mc = new MessageChannel();
    s.port = mc.port1;
    s.ready = new Promise((resolve) => {
      s.port.onmessage = (m) => {
        if (m.data && m.data.pong) { s.pong = performance.now(); return; }
        if (m.data && m.data.ready) { s.ok = true; resolve(); return; }
        if (s.onPort) s.onPort(m.data);
      };
      s.worker.postMessage({ port: mc.port2, closeKey: s.closeKey }, [mc.port2]);
    });
    return s;
  }

  // wanted is how many slots the page keeps: cfg.warm, fewer once the page
  // nears cfg.capacity workers (a full page gets no more starts).
  function wanted() {
    if (!(cfg.capacity > 0)) return cfg.warm;
    return Math.max(0, Math.min(cfg.warm, cfg.capacity - live.size));
  }

  // trim drops the slots a nearly full page no longer needs.
  function trim() {
    while (slots.length > wanted()) {
      const s = slots.pop();
      try { s.pc.close(); } catch (_) {}
      try { s.worker.terminate(); } catch (_) {}
      try { s.port.close(); } catch (_) {}
    }
  }

  async function fill() {
    if (filling) return;
    filling = true;
    try {
      while (slots.length < wanted() && negotiating === 0) {
        const s = makeSlot();
        slots.push(s);
        await s.ready;
        reportWarm();
      }
    } finally {
      filling = false;
    }
  }

  function scheduleFill() {
    if (negotiating === 0 && slots.length < wanted()) setTimeout(fill, 0);
  }

  // warmUp runs one offer/answer between two throw-away peer connections, so
  // that the page's first real answer does not pay for loading the WebRTC
  // machinery (measured: setRemoteDescription took about 100 ms in a fresh
  // page, about 5 ms after this).
  async function warmUp() {
    const a = new RTCPeerConnection({ certificates: [cert] });
    const b = new RTCPeerConnection({ certificates: [cert] });
    try {
      a.createDataChannel("warm-up");
      await a.setLocalDescription(await a.createOffer());
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription(await b.createAnswer());
      await a.setRemoteDescription(b.localDescription);
    } catch (e) {
      send({ t: "log", msg: "warm-up: " + e });
    } finally {
      a.close();
      b.close();
    }
  }

  async function init(channel, config) {
    emit = channel;
    cfg = config;
    cert = await RTCPeerConnection.generateCertificate({ name: "ECDSA", namedCurve: "P-256" });
    await warmUp();
    await fill();
    reportWarm();
    return lastWarm;
  }

  // Session: one worker of the page.
  function session(id, s) {
    const w = {
      id, s, dc: null, ended: false, negotiating: true, lastActivity: 0, idleTimer: null, outbox: [], runResolve: null,
      opened: false, // the data channel opened
      stopping: "", // the page asked the worker to close (its end reason)
      finishing: "", // the orderly end runs (its end reason)
      closeOnOpen: "", // the worker closed before the channel opened, with messages to deliver
      stopTimer: null,
      lastMid: null, // sdpMid and sdpMLineIndex of the last candidate gathered
      inAnswer: true, // candidates gathered now go out in the answer, not trickled
      quiescing: false, // the host asked for an orderly end (quiesce)
    };
    const tell = (o) => { o.id = id; send(o); };
    w.tell = tell;
    const touch = () => { w.lastActivity = performance.now(); };
    w.doneNegotiating = () => {
      if (!w.negotiating) return;
      w.negotiating = false;
      negotiating--;
      scheduleFill();
    };
    w.end = (reason, quiet, detail) => {
      if (w.ended) return;
      if (w.finishing && reason === "peer-closed") reason = w.finishing;
      w.ended = true;
      live.delete(id);
      w.doneNegotiating();
      scheduleFill(); // a full page has room again
      if (w.idleTimer) clearInterval(w.idleTimer);
      if (w.stopTimer) clearTimeout(w.stopTimer);
      if (w.busyTimer) clearInterval(w.busyTimer);
      if (w.iceTimer) clearTimeout(w.iceTimer);
      if (w.runResolve) { const r = w.runResolve; w.runResolve = null; r({ ok: false }); }
      if (!quiet) tell(detail ? { t: "end", reason, detail } : { t: "end", reason });
      try { if (w.dc) w.dc.close(); } catch (_) {}
      try { s.pc.close(); } catch (_) {}
      try { s.worker.terminate(); } catch (_) {}
      try { s.port.close(); } catch (_) {}
    };
    // finish ends the worker once everything it posted has reached the
    // client (it called self.close(), or was asked to close): the data
    // channel drains and closes, then the worker and the peer connection
    // go. A worker that closes before the channel opened ends at once,
    // unless it has messages waiting for the channel.
    w.finish = (reason) => {
      if (w.ended || w.finishing) return;
      if (!w.opened) {
        if (w.outbox.length === 0) w.end(reason); else w.closeOnOpen = reason;
        return;
      }
      w.finishing = reason;
      if (w.idleTimer) { clearInterval(w.idleTimer); w.idleTimer = null; }
      if (w.stopTimer) { clearTimeout(w.stopTimer); w.stopTimer = null; }
      drainAndClose(w.dc).then(() => w.end(reason));
    };
    // stop asks the worker to close (idle): its close marker follows what
    // it posted before; a worker too busy to answer is ended after STOP_MS.
    w.stop = (reason) => {
      if (w.ended || w.finishing || w.stopping) return;
      w.stopping = reason;
      try { s.port.postMessage({ t: "close" }); } catch (_) {}
      w.stopTimer = setTimeout(() => w.finish(reason), STOP_MS);
    };
    // quiesce ends the worker in order for the host (it stops): once the
    // channel has been quiet for QUIET_MS (at most QUIESCE_MS), as stop.
    // A worker whose channel is not open ends at once. Its "end" follows.
    w.quiesce = (reason) => {
      if (w.ended || w.finishing || w.stopping || w.quiescing) return;
      if (!w.opened) { w.end(reason); return; }
      w.quiescing = true;
      const t0 = performance.now();
      const tick = () => {
        if (w.ended || w.finishing || w.stopping) return;
        const now = performance.now();
        const quiet = now - w.lastActivity;
        if (quiet >= QUIET_MS || now - t0 >= QUIESCE_MS) { w.stop(reason); return; }
        setTimeout(tick, Math.min(QUIET_MS - quiet, QUIESCE_MS - (now - t0)) + 1);
      };
      tick();
    };
    w.fail = (errno, reason) => {
      if (w.ended) return null;
      w.end("error", true);
      return { t: "error", errno, reason };
    };
    const forward = (data) => {
      if (w.dc && w.dc.readyState === "open") {
        try { w.dc.send(data); } catch (e) { tell({ t: "log", msg: "dc.send: " + e }); }
      } else {
        w.outbox.push(data);
      }
    };
    const bridge = (ch) => {
      const dc = ch;
      w.dc = dc;
      dc.binaryType = "arraybuffer";
      dc.onmessage = (e) => { touch(); s.worker.postMessage(e.data); };
      dc.onclose = () => { if (!w.finishing) w.end("peer-closed"); };
      const opened = () => {
        w.opened = true;
        while (w.outbox.length) dc.send(w.outbox.shift());
        touch();
        if (cfg.idleMs > 0) {
          w.idleTimer = setInterval(() => {
            if (performance.now() - w.lastActivity >= cfg.idleMs) w.stop("idle");
          }, Math.max(50, Math.min(cfg.idleMs / 4, 30000)));
        }
        w.doneNegotiating();
        tell({ t: "open" });
        if (w.closeOnOpen) w.finish(w.closeOnOpen);
      };
      if (dc.readyState === "open") opened(); else dc.onopen = opened;
    };
    const pc = s.pc;
    pc.onicecandidate = (e) => {
      if (w.ended) return;
      if (!e.candidate) {
        tell({ t: "cand", c: endOfCandidates(pc, w.lastMid) });
        w.iceKnown("local");
        return;
      }
      if (!e.candidate.candidate) return; // end of a generation; null follows
      const c = e.candidate.toJSON();
      w.lastMid = { sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex };
      if (w.inAnswer) return; // it is in the answer's SDP
      if (cfg.loopback && !isLoopback(c.candidate)) return;
      tell({ t: "cand", c });
    };
    pc.ondatachannel = (e) => { if (!w.dc && !w.ended) bridge(e.channel); };
    // A peer connection that fails before the data channel opened is
    // reported at once as "ice-failed" (the host's 305): ICE found no
    // working pair, or DTLS failed on the pair ICE found.
    let iceUp = false;
    const failed = () => w.end("ice-failed", false, iceUp ? "DTLS" : "ICE");
    pc.oniceconnectionstatechange = () => {
      const st = pc.iceConnectionState;
      if (st === "connected" || st === "completed") iceUp = true;
      if (st === "failed" && !w.opened) failed();
    };
    // The ICE watch: Chromium never fails a peer connection that has no
    // candidate pair (it stays "new" or "checking", whatever the client's
    // end of candidates), and fails pairs nobody answers only after about
    // 15-18 s, later than a client gives up on its own (without the
    // host's advice); Firefox fails both itself (see ICE_NOPAIR_MS). So
    // once the worker's candidates are gathered (w.iceKnown), the page
    // looks at its candidate pairs (getStats) until the channel opens, ICE
    // connects or the worker ends: no pair, or every pair failed,
    // ICE_NOPAIR_MS after that, or, once the client's end-of-candidates
    // is in too, no pair that heard from the client ICE_SILENT_MS after
    // both, is an ICE failure (failed, as the browser's own). A pair that
    // got a request or a response is never cut: ICE is under way on it.
    const known = { local: 0, remote: 0 }; // when each side's candidates were all known
    w.iceKnown = (side) => {
      if (known[side]) return;
      known[side] = performance.now();
      if (side === "local" && !w.ended && !w.opened) w.iceTimer = setTimeout(watchICE, ICE_POLL_MS);
    };
    const watchICE = async () => {
      w.iceTimer = null;
      if (w.ended || w.opened || iceUp) return;
      let p;
      try { p = pairsOf(await pc.getStats()); } catch (_) { return; } // closed
      if (w.ended || w.opened || iceUp) return;
      const now = performance.now();
      let why = "";
      if (p.failed === p.n && now - known.local >= ICE_NOPAIR_MS) {
        why = (p.n ? "every candidate pair failed" : "no candidate pair") + " " + Math.round(now - known.local) + " ms after the worker gathered its candidates";
      } else if (!p.heard && known.remote && now - Math.max(known.local, known.remote) >= ICE_SILENT_MS) {
        why = "no candidate pair heard from the client " + Math.round(now - Math.max(known.local, known.remote)) + " ms after both sides' end of candidates";
      }
      if (!why) { w.iceTimer = setTimeout(watchICE, ICE_POLL_MS); return; }
      tell({ t: "log", msg: "ICE watch: " + why + " (" + p.n + " pairs)" });
      failed();
    };
    pc.onconnectionstatechange = () => {
      const st = pc.connectionState;
      if (st === "failed" && !w.opened) failed();
      else if (st === "failed" || st === "closed") w.end("peer-closed");
    };
    s.worker.onmessage = (e) => {
      const d = e.data;
      if (d !== null && typeof d === "object" && d[s.closeKey] === true) {
        w.finish(w.stopping || "worker-closed");
        return;
      }
      touch();
      forward(d);
    };
    s.worker.onerror = (e) => {
      // Errors after the first run: log them; the first run reports its own.
      tell({ t: "log", msg: "worker error: " + (e.message || "") + " line " + (e.lineno || 0) });
      e.preventDefault();
    };
    s.onPort = (d) => {
      if (w.runResolve) { const r = w.runResolve; w.runResolve = null; r(d); }
    };
    // The busy limit: the worker is pinged on its control port; one that
    // does not answer for cfg.busyMs (it never returns to its event loop)
    // is ended "cpu-limit" (terminated).
    if (cfg.busyMs > 0) {
      s.pong = performance.now();
      const every = Math.max(50, Math.min(cfg.busyMs / 4, 5000));
      w.busyTimer = setInterval(() => {
        if (w.ended) return;
        if (performance.now() - s.pong >= cfg.busyMs) {
          w.end("cpu-limit", false, "it did not return to its event loop for " + (cfg.busyMs / 1000) + " s (--worker-busy-limit)");
          return;
        }
        try { s.port.postMessage({ t: "ping" }); } catch (_) {}
      }, every);
    }
    return w;
  }

  // start runs a worker and returns (as a JSON string) its answer or its
  // error; candidates and later events go through the channel.
  // ice, when not "", is the JSON list of RTCIceServer entries for this
  // worker (short-lived TURN credentials): it replaces the page's own list
  // before the peer connection gathers (setLocalDescription).
  async function start(id, code, url, offer, ice) {
    return JSON.stringify(await start1(id, code, url, offer, ice) || { t: "none" });
  }

  function setIceServers(w, pc, ice) {
    if (!ice) return;
    try {
      pc.setConfiguration({ ...pc.getConfiguration(), iceServers: JSON.parse(ice) });
    } catch (e) {
      w.tell({ t: "log", msg: "setConfiguration: " + e });
    }
  }

  async function start1(id, code, url, offer, ice) {
    if (live.has(id)) return null;
    negotiating++;
    let s = slots.shift();
    if (!s) s = makeSlot();
    const w = session(id, s);
    live.set(id, w);
    trim();
    reportWarm();
    const t0 = performance.now();
    const tm = { entry: Date.now() };
    try {
      // A slot that does not get ready: Firefox did not start its Worker
      // (past its per-domain worker cap, dom.workers.maxPerDomain, it
      // queues new ones silently).
      const ready = await Promise.race([s.ready.then(() => true), sleep(READY_MS).then(() => false)]);
      if (w.ended) return null;
      if (!ready) return w.fail(301, "the browser did not start the worker within " + READY_MS / 1000 + " s (its worker cap, dom.workers.maxPerDomain, may be reached)");
      setIceServers(w, s.pc, ice);
      const ran = new Promise((resolve) => { w.runResolve = resolve; }).then((r) => { tm.run = performance.now() - t0; return r; });
      s.port.postMessage({ t: "run", code, url });
      const applied = s.pc.setRemoteDescription({ type: "offer", sdp: offer }).then(
        () => { tm.offer = performance.now() - t0; return null; },
        (e) => ({ errno: 204, reason: "offer rejected: " + (e && e.message ? e.message : String(e)) }),
      );
      const [r, offerErr] = await Promise.all([ran, applied]);
      if (w.ended) return null;
      if (!r.ok) return w.fail(r.errno, r.reason);
      if (offerErr) return w.fail(offerErr.errno, offerErr.reason);
      const answer = await s.pc.createAnswer();
      tm.create = performance.now() - t0;
      await s.pc.setLocalDescription(answer);
      tm.local = performance.now() - t0;
      await gathered(s.pc, GATHER_MS);
      tm.gathered = performance.now() - t0;
      if (w.ended) return null;
      tm.sent = Date.now();
      w.inAnswer = false; // candidates gathered from now on are trickled
      return { t: "answer", sdp: s.pc.localDescription.sdp, tm };
    } catch (e) {
      return w.fail(204, "answer failed: " + (e && e.message ? e.message : String(e)));
    }
  }

  // pairsOf counts the candidate pairs of a getStats report: n, failed,
  // and heard (one of them got a request or a response from the client,
  // or succeeded).
  function pairsOf(stats) {
    const p = { n: 0, failed: 0, heard: false };
    stats.forEach((r) => {
      if (r.type !== "candidate-pair") return;
      p.n++;
      if (r.state === "failed") p.failed++;
      if (r.state === "succeeded" || r.responsesReceived > 0 || r.requestsReceived > 0 || r.bytesReceived > 0 || r.readable === true) p.heard = true;
    });
    return p;
  }

  async function addCandidate(w, c) {
    if (!c.candidate) {
      await w.s.pc.addIceCandidate(null).catch(() => w.s.pc.addIceCandidate({ candidate: "" }));
      w.iceKnown("remote");
      return;
    }
    if (cfg.loopback && !isLoopback(c.candidate)) return;
    if (c.sdpMid == null && c.sdpMLineIndex == null) c.sdpMLineIndex = 0;
    await w.s.pc.addIceCandidate(c);
  }

  // addCandidates applies client candidates. The host sends them only
  // after gh.start returned the answer, so the worker is known (or ended).
  async function addCandidates(id, json) {
    const w = live.get(id);
    if (w) await addList(w, JSON.parse(json));
  }

  // addList hands every candidate to the peer connection at once (its
  // operations chain keeps their order).
  async function addList(w, list) {
    if (w.ended) return;
    await Promise.all(list.map((c) => addCandidate(w, c).catch((e) => w.tell({ t: "log", msg: "addIceCandidate: " + e }))));
  }

  function close(id) {
    const w = live.get(id);
    if (w) w.end("closed", true);
  }

  // quiesce ends a worker in order (see w.quiesce); false when it is not
  // live (its "end" was sent already).
  function quiesce(id, reason) {
    const w = live.get(id);
    if (!w || w.ended) return false;
    w.quiesce(reason);
    return true;
  }

  function stats() { return JSON.stringify({ warm: lastWarm, live: live.size, slots: slots.length }); }

  Object.defineProperty(window, "gh", {
    value: Object.freeze({ init, start, addCandidates, close, quiesce, stats }),
  });
})();
