// geckohost.js — browser client for geckohost (an ES module, no dependencies).
//
//   import { connect, GeckohostError } from "http://127.0.0.1:8765/geckohost.js";
//   const session = await connect({ token, source: "http://127.0.0.1:8765/workers/echo.js" });
//   session.channel.onmessage = (e) => console.log(e.data);
//   session.channel.send("hello");
//   ...
//   session.close();
//
// connect() opens the signaling WebSocket, creates the RTCPeerConnection and
// its data channel (the client is the offerer), sends the client-hello,
// trickles ICE candidates both ways and resolves once the host said
// "connected" AND the data channel is open. The WebSocket is closed by then:
// from there on the page and the worker talk peer to peer.
// Failures reject with a GeckohostError carrying the public errno.

/** Public error numbers and their names (a contract with clients). */
export const ERRNO_NAMES = Object.freeze({
  101: "INVALID_AUTHORIZATION",
  102: "INVALID_TOKEN",
  103: "INVALID_MESSAGE",
  104: "SOURCE_NOT_ALLOWED",
  105: "LIMIT_REACHED",
  201: "UNABLE_TO_FETCH_WORKER_CODE",
  202: "SYNTAX_ERROR_IN_WORKER_CODE",
  203: "UNCAUGHT_EXCEPTION_IN_WORKER_CODE",
  204: "INVALID_OFFER",
  205: "WORKER_LIMIT_EXCEEDED",
  301: "NO_GECKO_AVAILABLE",
  302: "GECKO_TIMEOUT",
  303: "GECKO_CRASHED",
  304: "SHUTTING_DOWN",
  305: "PEER_CONNECTION_FAILED",
});

const ADVICE = Object.freeze({
  101: "Send the token as \"Bearer <token>\"; paste the token itself (it starts with gh_), not a header.",
  102: "The token is unknown, revoked or expired: create a token with `geckohost token add --name NAME` and paste it here.",
  103: "The host could not read a signaling message: use a client that follows the geckohost protocol (this page does).",
  104: "The worker's URL is not allowed: start serve with --allow-source ORIGIN (and include it in the token's --source list, if it has one), or pick a bundled worker.",
  105: "This token is at its limit of live workers or of workers started per period (the reason says which): disconnect a session, wait the time the reason names, or use a token with a higher --max-workers or --rate.",
  201: "The worker code could not be fetched: check that its URL is right and answers 200 to the host.",
  202: "The worker code does not parse: fix the syntax error named in the reason.",
  203: "The worker code threw while it first ran: fix the exception named in the reason.",
  204: "The gecko rejected the SDP offer: make sure the offer has a data channel (this client always adds one).",
  205: "The worker went past one of the server's resource limits (memory, CPU busy time or lifetime; the reason names it): make the worker use less, or ask the operator for a higher limit.",
  301: "No Firefox could take the worker right now: check that Firefox is installed and see serve's log, or raise --browsers / --max-workers-per-browser.",
  302: "The gecko did not answer or connect in time: the host may be overloaded; try again, and see serve's log.",
  303: "The Firefox running the worker crashed: just connect again (a new one is started); if it keeps happening, see serve's log.",
  304: "The host is shutting down: wait for it to come back and connect again.",
  305: "No network path between this browser and the worker (the reason says what each side offered): across networks or where UDP is blocked, start serve with --turn-listen; a client on another machine needs serve without --ice-loopback. See the README's Networks section.",
});

/** Returns the public name of an errno, e.g. 102 → "INVALID_TOKEN". */
export function errnoName(errno) {
  return ERRNO_NAMES[errno] || (errno ? `ERRNO_${errno}` : "CONNECTION_FAILED");
}

/** Returns one sentence on what to do about an errno. */
export function adviceFor(errno) {
  return ADVICE[errno] || "Check the host's log (serve prints one line per session) and try again.";
}

/**
 * The error connect() rejects with. errno is the public error number (0 when
 * the failure happened before the host could say: WebSocket refused, timeout,
 * ICE failure), name its public name ("INVALID_TOKEN"), reason the host's
 * text, workerId the worker's id (or null), advice one sentence for humans.
 */
export class GeckohostError extends Error {
  constructor(errno, reason, workerId = null) {
    const name = errnoName(errno);
    // String(err) reads "INVALID_TOKEN: unknown token (errno 102)".
    super(errno ? `${reason} (errno ${errno})` : reason);
    this.name = name;
    this.errno = errno;
    this.reason = reason;
    this.workerId = workerId;
    this.advice = adviceFor(errno);
  }
}

/**
 * The signaling URL of the host this module was loaded from: ws(s)://host/
 * for http(s)://host/geckohost.js (whatever page imported it).
 */
export function defaultURL() {
  const u = new URL(".", import.meta.url);
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new GeckohostError(0, `no url given, and this module was not loaded over http(s) (${u.protocol})`);
  }
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}

/** The http(s) URL of a geckohost path next to the signaling URL wsURL. */
function hostURL(wsURL, path) {
  const u = new URL(path, wsURL);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  return u.href;
}

/**
 * Fetches the ICE servers the host offers this token (GET /ice-servers:
 * its STUN/TURN servers, with short-lived TURN credentials). Returns []
 * when the host has none, does not know the path (an older geckohost), or
 * does not answer within timeoutMs.
 */
export async function fetchIceServers({ url, token, timeoutMs = 3000, signal } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const onAbort = () => ac.abort();
  if (signal) signal.addEventListener("abort", onAbort, { once: true });
  try {
    const resp = await fetch(hostURL(url || defaultURL(), "ice-servers"), {
      headers: { Authorization: "Bearer " + token },
      signal: ac.signal,
      cache: "no-store",
      credentials: "omit",
    });
    if (!resp.ok) return [];
    const body = await resp.json();
    return Array.isArray(body && body.iceServers) ? body.iceServers : [];
  } catch {
    return [];
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Returns the candidate pair a peer connection uses, from its stats:
 * { local, remote, protocol, relayProtocol, localAddress, remoteAddress }
 * where local and remote are candidate types ("host", "srflx", "prflx",
 * "relay"), protocol the transport to the peer ("udp"/"tcp") and
 * relayProtocol, for a local relay candidate, how this browser reaches
 * the TURN server ("udp", "tcp", "tls"). null when there is none yet.
 */
export async function selectedPath(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((r) => {
    if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    stats.forEach((r) => {
      if (r.type === "candidate-pair" && (r.selected || (r.nominated && r.state === "succeeded")) && !pair) pair = r;
    });
  }
  if (!pair) return null;
  const l = stats.get(pair.localCandidateId) || {};
  const r = stats.get(pair.remoteCandidateId) || {};
  return {
    local: l.candidateType || "",
    remote: r.candidateType || "",
    protocol: (l.protocol || "").toLowerCase(),
    relayProtocol: (l.relayProtocol || "").toLowerCase(),
    localAddress: l.address || l.ip || "",
    remoteAddress: r.address || r.ip || "",
  };
}

/** One line for a path from selectedPath: "relay (TURN over tcp) → host". */
export function describePath(p) {
  if (!p) return "unknown";
  const local = p.local === "relay" && p.relayProtocol ? `relay (TURN over ${p.relayProtocol})` : p.local;
  return `${local} → ${p.remote}${p.protocol && p.protocol !== "udp" ? " (" + p.protocol + ")" : ""}`;
}

// summarize names the candidate types a list of candidate lines offers.
function summarize(lines) {
  const seen = new Map();
  for (const c of lines) {
    const f = String(c).replace(/^a=/, "").split(/\s+/);
    if (f.length < 8) continue;
    const k = f[4].endsWith(".local") ? "mDNS .local name" : `${f[7]} ${f[4]}`;
    seen.set(k, (seen.get(k) || 0) + 1);
  }
  if (!seen.size) return "no candidates";
  return [...seen.keys()].join(", ");
}

function toWireCandidate(c) {
  const out = { candidate: c.candidate || "" };
  if (c.sdpMid != null) out.sdpMid = c.sdpMid;
  if (c.sdpMLineIndex != null) out.sdpMLineIndex = c.sdpMLineIndex;
  if (c.usernameFragment) out.usernameFragment = c.usernameFragment;
  return out;
}

/**
 * Starts a worker and connects to it.
 *
 * options:
 *   url         signaling WebSocket URL; default: the host this module was
 *               loaded from (ws://host/ for http://host/geckohost.js)
 *   token       the bearer token (without "Bearer ")
 *   source      the worker's JavaScript URL (absolute, or relative to the page)
 *   iceServers  RTCIceServer list for the RTCPeerConnection; default: what
 *               the host offers on GET /ice-servers (its TURN relay, with
 *               short-lived credentials), or [] when it offers none
 *   onEvent     optional callback (step, detail, ms) for each negotiation step,
 *               ms since connect() was called. Steps: "websocket-open",
 *               "ice-servers", "hello-sent", "local-candidate", "answer",
 *               "remote-candidate", "connected", "channel-open", "error".
 *   timeout     ms to wait for the whole negotiation; default 70000 (the host
 *               itself gives up with errno 302 after 30 s without an answer
 *               or 30 s from the answer without a connection)
 *   label       the data channel's label; default "geckohost"
 *   signal      optional AbortSignal: aborting it gives up the negotiation
 *
 * Resolves to { channel, workerId, timings, pc, iceServers, path(), close() }:
 * channel is the open RTCDataChannel (binaryType "arraybuffer"), timings the
 * ms of each step ({ websocketOpen, helloSent, answer, connected,
 * channelOpen }), path() resolves to the candidate pair in use (see
 * selectedPath). A peer connection that fails rejects with errno 305
 * (PEER_CONNECTION_FAILED), the host's reason when it sends one.
 */
export async function connect({ url, token, source, iceServers, onEvent, timeout = 70000, label = "geckohost", signal } = {}) {
  const t0 = performance.now();
  const timings = {};
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;
  const emit = (step, detail) => {
    const t = ms();
    if (onEvent) {
      try { onEvent(step, detail, t); } catch (e) { console.error("geckohost onEvent:", e); }
    }
    return t;
  };

  if (!token) throw new GeckohostError(101, "no token given");
  if (!source) throw new GeckohostError(0, "no worker source given");
  const sourceURL = new URL(source, globalThis.location ? globalThis.location.href : undefined).href;
  const wsURL = url || defaultURL();
  if (iceServers === undefined) {
    iceServers = await fetchIceServers({ url: wsURL, token, signal });
    emit("ice-servers", { count: iceServers.length, urls: iceServers.flatMap((s) => [].concat(s.urls || [])) });
  }

  const pc = new RTCPeerConnection({ iceServers });
  const channel = pc.createDataChannel(label);
  channel.binaryType = "arraybuffer";
  let ws = null;
  let settled = false;
  let workerId = null;

  const close = () => {
    try { channel.close(); } catch { /* already closed */ }
    try { pc.close(); } catch { /* already closed */ }
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  };

  return new Promise((resolve, reject) => {
    let connected = false;
    let open = false;
    let answered = false;
    let helloSent = false;
    const localQueue = []; // candidates gathered before the hello went out
    // Worker candidates are applied in arrival order, and only once the
    // answer is applied: each waits for the one before it.
    let answerApplied;
    let remoteChain = new Promise((resolve) => { answerApplied = resolve; });
    const localLines = []; // candidates each side offered, for a 305 of our own
    const remoteLines = [];
    let failTimer = null;

    const timer = setTimeout(() => fail(new GeckohostError(0, `not connected after ${timeout} ms`, workerId)), timeout);
    if (signal) {
      const onAbort = () => fail(new GeckohostError(0, "cancelled", workerId));
      if (signal.aborted) { onAbort(); return; }
      signal.addEventListener("abort", onAbort, { once: true });
    }

    function fail(err) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(failTimer);
      emit("error", err);
      close();
      reject(err);
    }
    function maybeDone() {
      if (settled || !connected || !open) return;
      settled = true;
      clearTimeout(timer);
      if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
      resolve({ channel, workerId, timings, pc, iceServers, path: () => selectedPath(pc), close });
    }
    function send(obj) {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
    }
    function sendCandidate(c) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return; // after "connected": no longer needed
      send({ messageType: "ice", action: "client-candidate", candidate: c });
      emit("local-candidate", c);
    }
    async function addRemote(c) {
      try {
        if (!c.candidate) {
          await pc.addIceCandidate(); // end of candidates
        } else {
          await pc.addIceCandidate(c);
        }
      } catch (e) {
        // A candidate the browser cannot use (e.g. another address family)
        // is not fatal: ICE goes on with the others.
        emit("remote-candidate-ignored", { candidate: c.candidate, error: String(e) });
      }
    }

    channel.onopen = () => {
      timings.channelOpen = emit("channel-open", { label: channel.label });
      open = true;
      maybeDone();
    };
    pc.onicecandidate = (e) => {
      const c = e.candidate ? toWireCandidate(e.candidate) : { candidate: "", sdpMid: "0", sdpMLineIndex: 0 };
      if (!c.candidate && e.candidate) return; // a per-m-line end marker; the null event follows
      if (c.candidate) localLines.push(c.candidate);
      if (helloSent) sendCandidate(c); else localQueue.push(c);
    };
    // Our own end failing: the host's 305 (with both sides' candidates)
    // is usually on its way; wait for it a little, else say what we know.
    pc.onconnectionstatechange = () => {
      if (pc.connectionState !== "failed" || settled || failTimer) return;
      failTimer = setTimeout(() => {
        fail(new GeckohostError(305, `the peer connection to the worker failed: this browser offered ${summarize(localLines)}, the worker offered ${summarize(remoteLines)}`, workerId));
      }, 3000);
    };

    try {
      ws = new WebSocket(wsURL);
    } catch (e) {
      fail(new GeckohostError(0, `cannot open ${wsURL}: ${e.message}`));
      return;
    }
    const wsOpen = new Promise((res, rej) => {
      ws.onopen = res;
      ws.onerror = () => rej(new GeckohostError(0, `cannot connect to ${wsURL} (is geckohost serve running, and does --allow-origin allow this page?)`));
    });
    ws.onclose = (e) => {
      if (!connected && !settled) {
        fail(new GeckohostError(0, `the host closed the connection before the worker connected (code ${e.code}${e.reason ? ": " + e.reason : ""})`, workerId));
      }
    };
    ws.onmessage = async (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (!m || typeof m !== "object") return;
      if (m.workerId) workerId = m.workerId;
      switch (m.messageType) {
        case "worker-error":
          fail(new GeckohostError(Number(m.errno) || 0, m.reason || "", m.workerId ?? workerId));
          return;
        case "hello":
          if (m.action !== "worker-hello" || answered) return;
          answered = true;
          timings.answer = emit("answer", { workerId: m.workerId });
          try {
            await pc.setRemoteDescription({ type: "answer", sdp: m.webrtcAnswer });
          } catch (err) {
            fail(new GeckohostError(204, `cannot apply the worker's answer: ${err.message}`, workerId));
            return;
          }
          answerApplied();
          return;
        case "ice": {
          if (m.action !== "worker-candidate" || !m.candidate) return;
          const c = m.candidate;
          if (c.candidate) remoteLines.push(c.candidate);
          emit("remote-candidate", c);
          remoteChain = remoteChain.then(() => addRemote(c));
          return;
        }
        case "connected":
          connected = true;
          timings.connected = emit("connected", { workerId });
          maybeDone();
          return;
      }
    };

    (async () => {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await wsOpen;
      timings.websocketOpen = emit("websocket-open", { url: wsURL });
      send({
        messageType: "hello",
        action: "client-hello",
        authorization: "Bearer " + token,
        source: sourceURL,
        webrtcOffer: pc.localDescription.sdp,
      });
      helloSent = true;
      timings.helloSent = emit("hello-sent", { source: sourceURL });
      for (const c of localQueue.splice(0)) sendCandidate(c);
    })().catch((e) => fail(e instanceof GeckohostError ? e : new GeckohostError(0, String(e && e.message || e))));
  });
}
