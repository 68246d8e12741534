// The geckohost demo page. It uses the same client module any web app can
// import: /geckohost.js.
import { connect, GeckohostError, errnoName, adviceFor, describePath } from "/geckohost.js";

const WORKERS = [
  { id: "echo", name: "Echo", path: "/workers/echo.js", about: "Sends every message straight back.",
    placeholder: "Type a message", presets: ["Hello, Gecko!", "ping"] },
  { id: "primes", name: "Primes", path: "/workers/primes.js", about: "Counts primes up to N in the remote Firefox: CPU work.",
    placeholder: "A number N, e.g. 1000000", presets: ["100000", "1000000", "10000000"] },
  { id: "mandelbrot", name: "Mandelbrot", path: "/workers/mandelbrot.js", about: "Renders a fractal tile remotely, sent back as binary pixels.",
    placeholder: '{"w":480,"h":300,"x":-0.7,"y":0,"scale":3.4,"iter":250}',
    presets: ["Whole set", "Seahorse valley", "Spiral"] },
  { id: "custom", name: "Custom URL", path: "", about: "Your own worker script (the host must allow its origin).",
    placeholder: "Type a message", presets: [] },
];

const TILES = {
  "Whole set": { w: 480, h: 300, x: -0.7, y: 0, scale: 3.4, iter: 250 },
  "Seahorse valley": { w: 480, h: 300, x: -0.745, y: 0.11, scale: 0.03, iter: 600 },
  "Spiral": { w: 480, h: 300, x: -0.7435, y: 0.1314, scale: 0.002, iter: 1200 },
};

const STEP_LABELS = {
  "ice-servers": "ICE servers",
  "websocket-open": "WebSocket open",
  "hello-sent": "Hello sent",
  "local-candidate": "ICE candidate →",
  "answer": "Answer received",
  "remote-candidate": "ICE candidate ←",
  "remote-candidate-ignored": "ICE candidate ← (unusable)",
  "connected": "Connected",
  "channel-open": "Data channel open",
  "error": "Error",
};

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "geckohost.token";
const WORKER_KEY = "geckohost.worker";
const CUSTOM_KEY = "geckohost.customURL";

const state = {
  session: null,
  connecting: false,
  abort: null, // AbortController of the negotiation in progress
  pending: [], // {t0, label, tile} per message sent, in order
  rtts: [],
};

// --- storage (localStorage may be unavailable: private mode, file://) ---
function load(key) {
  try { return localStorage.getItem(key) || ""; } catch { return ""; }
}
function save(key, value) {
  try { if (value) localStorage.setItem(key, value); else localStorage.removeItem(key); } catch { /* ignore */ }
}

// --- worker picker ---
function renderWorkers() {
  const list = $("worker-list");
  const chosen = load(WORKER_KEY) || "echo";
  for (const w of WORKERS) {
    const label = document.createElement("label");
    label.className = "choice";
    label.innerHTML = `<input type="radio" name="worker"><span class="cname"></span><span class="cabout"></span>`;
    const input = label.querySelector("input");
    input.value = w.id;
    input.id = "worker-" + w.id;
    input.checked = w.id === chosen;
    label.querySelector(".cname").textContent = w.name;
    label.querySelector(".cabout").textContent = w.about;
    input.addEventListener("change", onWorkerChange);
    list.appendChild(label);
  }
  $("custom-url").value = load(CUSTOM_KEY);
  onWorkerChange();
}

function currentWorker() {
  const input = document.querySelector('input[name="worker"]:checked');
  return WORKERS.find((w) => input && w.id === input.value) || WORKERS[0];
}

function onWorkerChange() {
  const w = currentWorker();
  save(WORKER_KEY, w.id);
  $("custom-row").hidden = w.id !== "custom";
  renderPresets(w);
  setConnectedUI(!!state.session);
  if (w.id === "custom") $("custom-url").focus();
}

function renderPresets(w) {
  const box = $("presets");
  box.textContent = "";
  for (const p of w.presets) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "chip";
    b.textContent = p;
    b.addEventListener("click", () => {
      if (w.id === "mandelbrot") sendTile(p);
      else sendText(p);
    });
    box.appendChild(b);
  }
  $("message").placeholder = w.placeholder;
  $("tile").hidden = w.id !== "mandelbrot";
  $("ping").hidden = w.id !== "echo" && w.id !== "custom";
}

// --- timeline ---
function fmtMs(ms) {
  return ms < 10 ? ms.toFixed(1) : Math.round(ms).toString();
}

function describeCandidate(c) {
  if (!c || !c.candidate) return "end of candidates";
  // candidate:foundation component protocol priority address port typ type ...
  const f = c.candidate.replace(/^a=/, "").split(/\s+/);
  if (f.length >= 8) return `${f[2].toLowerCase()} ${f[4].includes(":") ? "[" + f[4] + "]" : f[4]}:${f[5]} ${f[7]}`;
  return c.candidate;
}

function addStep(step, detail, ms) {
  const tl = $("timeline");
  const empty = tl.querySelector(".empty");
  if (empty) empty.remove();
  const li = document.createElement("li");
  li.className = "step step-" + step;
  li.dataset.step = step;
  const t = document.createElement("span");
  t.className = "ms";
  t.textContent = fmtMs(ms) + " ms";
  const l = document.createElement("span");
  l.className = "label";
  l.textContent = STEP_LABELS[step] || step;
  const d = document.createElement("span");
  d.className = "detail";
  if (step === "local-candidate" || step === "remote-candidate" || step === "remote-candidate-ignored") {
    d.textContent = describeCandidate(detail);
  } else if (step === "hello-sent") {
    d.textContent = detail.source;
  } else if (step === "answer" || step === "connected") {
    d.textContent = detail.workerId ? "worker " + detail.workerId.slice(0, 8) : "";
  } else if (step === "websocket-open") {
    d.textContent = detail.url;
  } else if (step === "ice-servers") {
    d.textContent = detail.count ? detail.urls.join(" ") : "none offered by the host";
  } else if (step === "error") {
    d.textContent = detail.errno ? `${detail.errno} ${detail.name}` : detail.message;
  }
  d.title = d.textContent;
  li.append(t, l, d);
  tl.appendChild(li);
  tl.scrollTop = tl.scrollHeight;
}

function clearTimeline() {
  $("timeline").textContent = "";
  $("summary").textContent = "";
  delete $("summary").dataset.path;
}

// --- status and errors ---
function setStatus(s, text) {
  const el = $("status");
  el.dataset.state = s;
  el.textContent = text;
}

function showError(err) {
  const box = $("error");
  const errno = err instanceof GeckohostError ? err.errno : 0;
  $("error-errno").textContent = errno ? String(errno) : "";
  $("error-errno").hidden = !errno;
  $("error-name").textContent = err instanceof GeckohostError ? err.name : errnoName(0);
  $("error-reason").textContent = (err instanceof GeckohostError ? err.reason : String(err && err.message || err)) || "";
  setRichText($("error-advice"), err instanceof GeckohostError ? err.advice : adviceFor(0));
  box.dataset.errno = String(errno);
  box.hidden = false;
}

// setRichText sets el's text, showing `quoted` parts as code (no HTML parsing).
function setRichText(el, text) {
  el.textContent = "";
  text.split("`").forEach((part, i) => {
    if (i % 2 === 1) {
      const c = document.createElement("code");
      c.textContent = part;
      el.appendChild(c);
    } else if (part) {
      el.appendChild(document.createTextNode(part));
    }
  });
}

function hideError() {
  $("error").hidden = true;
}

// --- connect / disconnect ---
function setConnectedUI(on) {
  $("connect").disabled = on || state.connecting;
  $("disconnect").disabled = !on && !state.connecting;
  $("message").disabled = !on;
  $("send").disabled = !on;
  $("ping").disabled = !on;
  for (const b of $("presets").querySelectorAll("button")) b.disabled = !on;
  for (const i of document.querySelectorAll('input[name="worker"], #custom-url, #token')) i.disabled = on || state.connecting;
  if (!on) $("message").placeholder = "Connect first";
}

async function onConnect(ev) {
  ev.preventDefault();
  if (state.session || state.connecting) return;
  hideError();
  const token = $("token").value.trim();
  if (!token) {
    showError(new GeckohostError(101, "no token given"));
    $("token").focus();
    return;
  }
  save(TOKEN_KEY, token);
  const w = currentWorker();
  let source = w.path;
  if (w.id === "custom") {
    source = $("custom-url").value.trim();
    save(CUSTOM_KEY, source);
    if (!source) {
      showError(new GeckohostError(0, "enter the URL of your worker script"));
      return;
    }
  }
  clearTimeline();
  resetLog();
  $("message").value = "";
  $("tile").hidden = true;
  state.connecting = true;
  setConnectedUI(false);
  setStatus("busy", "Connecting…");
  try {
    state.abort = new AbortController();
    const session = await connect({ token, source, onEvent: addStep, signal: state.abort.signal });
    state.session = session;
    state.connecting = false;
    const t = session.timings;
    $("summary").textContent = `open in ${fmtMs(t.channelOpen ?? 0)} ms`;
    // Which path the connection took: host, srflx, prflx or relay.
    session.path().then((p) => {
      if (!p || state.session !== session) return;
      $("summary").textContent = `open in ${fmtMs(t.channelOpen ?? 0)} ms · via ${describePath(p)}`;
      $("summary").dataset.path = p.local + " " + p.remote + (p.relayProtocol ? " " + p.relayProtocol : "");
    }).catch(() => {});
    $("worker-id").textContent = session.workerId ? "worker " + session.workerId.slice(0, 8) : "";
    $("worker-id").title = session.workerId || "";
    setStatus("ok", "Connected · peer to peer");
    refreshStatus(); // the strip counts this session now
    renderPresets(w);
    setConnectedUI(true);
    $("message").focus();
    session.channel.onmessage = onReply;
    session.channel.onclose = () => endSession("The worker closed the session.");
    session.pc.addEventListener("connectionstatechange", () => {
      if (["failed", "closed"].includes(session.pc.connectionState)) endSession("The connection to the worker was lost.");
    });
  } catch (err) {
    state.connecting = false;
    $("worker-id").textContent = "";
    setConnectedUI(false);
    if (err instanceof GeckohostError && err.reason === "cancelled") {
      setStatus("idle", "Cancelled");
      return;
    }
    setStatus("bad", "Failed");
    showError(err);
  } finally {
    state.abort = null;
  }
}

function endSession(why) {
  const s = state.session;
  if (!s) return;
  state.session = null;
  s.channel.onclose = null;
  s.close();
  state.pending = [];
  setConnectedUI(false);
  setStatus("idle", why || "Disconnected");
  refreshStatus();
  logLine("sys", why || "Disconnected.");
  $("worker-id").textContent = "";
}

// --- messages ---
function resetLog() {
  $("log").innerHTML = '<li class="empty">Replies from the worker show up here.</li>';
  state.pending = [];
  state.rtts = [];
  drawChart();
}

function logLine(kind, text, meta) {
  const log = $("log");
  const empty = log.querySelector(".empty");
  if (empty) empty.remove();
  const li = document.createElement("li");
  li.className = "msg msg-" + kind;
  const dir = document.createElement("span");
  dir.className = "dir";
  dir.textContent = kind === "out" ? "→" : kind === "in" ? "←" : "•";
  const body = document.createElement("span");
  body.className = "body";
  body.textContent = text;
  li.append(dir, body);
  if (meta) {
    const m = document.createElement("span");
    m.className = "meta";
    m.textContent = meta;
    li.appendChild(m);
  }
  log.appendChild(li);
  while (log.children.length > 200) log.firstChild.remove();
  log.scrollTop = log.scrollHeight;
}

function sendRaw(data, label, extra) {
  const s = state.session;
  if (!s || s.channel.readyState !== "open") return false;
  state.pending.push({ t0: performance.now(), label, ...extra });
  s.channel.send(data);
  return true;
}

function sendText(text) {
  if (sendRaw(text, text)) logLine("out", text);
}

function sendTile(name) {
  const req = TILES[name];
  if (sendRaw(JSON.stringify(req), name, { tile: req })) logLine("out", `${name} tile (${req.w}×${req.h}, ${req.iter} iterations)`);
}

function onReply(e) {
  const p = state.pending.shift();
  const rtt = p ? performance.now() - p.t0 : null;
  if (rtt != null) {
    state.rtts.push(rtt);
    if (state.rtts.length > 120) state.rtts.shift();
    drawChart();
  }
  const meta = rtt != null ? `${fmtMs(rtt)} ms` : "";
  if (typeof e.data === "string") {
    logLine("in", describeText(e.data), meta);
    return;
  }
  const buf = e.data;
  if (p && p.tile && buf.byteLength === 8 + p.tile.w * p.tile.h) {
    const ms = new DataView(buf).getFloat64(0, true);
    drawTile(p.tile, new Uint8Array(buf, 8));
    logLine("in", `${p.label}: ${buf.byteLength.toLocaleString()} bytes of pixels, computed in ${fmtMs(ms)} ms by the remote worker`, meta);
  } else {
    logLine("in", `${buf.byteLength.toLocaleString()} bytes (binary)`, meta);
  }
}

function describeText(s) {
  try {
    const o = JSON.parse(s);
    if (o && typeof o === "object" && "count" in o && "largest" in o) {
      const engine = /Firefox\/[\d.]+/.exec(o.engine || "");
      return `${o.count.toLocaleString()} primes up to ${o.n.toLocaleString()} (largest ${o.largest.toLocaleString()}), ` +
        `${fmtMs(o.ms)} ms of CPU in ${engine ? engine[0] : "the remote Gecko"}`;
    }
    if (o && typeof o === "object" && o.error) return "error: " + o.error;
  } catch { /* not JSON */ }
  return s;
}

const FAR = [250, 247, 242], MID = [230, 106, 31], EDGE = [88, 28, 110], INSIDE = [29, 35, 48];
const mix = (a, b, f) => [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * f));

function drawTile(t, px) {
  const c = $("tile");
  c.width = t.w;
  c.height = t.h;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(t.w, t.h);
  for (let i = 0; i < px.length; i++) {
    const v = px[i];
    const o = i * 4;
    let rgb;
    if (v === 255) {
      rgb = INSIDE;
    } else {
      // Light far from the set, through gecko orange, to violet at its edge.
      const k = Math.sqrt(v / 254);
      rgb = k < 0.5 ? mix(FAR, MID, k * 2) : mix(MID, EDGE, (k - 0.5) * 2);
    }
    img.data[o] = rgb[0]; img.data[o + 1] = rgb[1]; img.data[o + 2] = rgb[2];
    img.data[o + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  c.hidden = false;
}

// --- round-trip chart (inline SVG) ---
const SVG = "http://www.w3.org/2000/svg";
function drawChart() {
  const svg = $("rtt-chart");
  svg.textContent = "";
  const W = 320, H = 120, pad = 4;
  const data = state.rtts;
  const max = Math.max(1, ...data) * 1.15;
  for (const f of [0.25, 0.5, 0.75]) {
    const y = pad + (H - 2 * pad) * f;
    const l = document.createElementNS(SVG, "line");
    l.setAttribute("x1", 0); l.setAttribute("x2", W);
    l.setAttribute("y1", y); l.setAttribute("y2", y);
    l.setAttribute("class", "grid");
    svg.appendChild(l);
  }
  if (!data.length) {
    $("rtt-stats").textContent = "";
    return;
  }
  const n = Math.max(data.length, 20);
  const bw = W / n;
  data.forEach((v, i) => {
    const h = Math.max(1.5, ((H - 2 * pad) * v) / max);
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("x", (i * bw + bw * 0.15).toFixed(2));
    r.setAttribute("width", (bw * 0.7).toFixed(2));
    r.setAttribute("y", (H - pad - h).toFixed(2));
    r.setAttribute("height", h.toFixed(2));
    r.setAttribute("class", "bar");
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${fmtMs(v)} ms`;
    r.appendChild(title);
    svg.appendChild(r);
  });
  const sorted = [...data].sort((a, b) => a - b);
  const med = sorted[Math.floor(sorted.length / 2)];
  $("rtt-stats").textContent = `last ${fmtMs(data[data.length - 1])} ms · median ${fmtMs(med)} ms · max ${fmtMs(sorted[sorted.length - 1])} ms`;
}

async function sendPings() {
  for (let i = 1; i <= 20 && state.session; i++) {
    sendRaw(`ping ${i}`, `ping ${i}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  logLine("sys", "Sent 20 pings.");
}

// --- server status strip (GET /status) ---
const STATUS_EVERY_MS = 5000;

function fmtUptime(s) {
  if (s < 60) return Math.floor(s) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function plural(n, noun) { return n + " " + noun + (n === 1 ? "" : "s"); }

async function refreshStatus() {
  const el = $("server-status");
  try {
    const res = await fetch("/status", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const st = await res.json();
    const running = (st.browsers || []).filter((b) => b.state === "running").length;
    const parts = [
      "geckohost " + st.version,
      "up " + fmtUptime(st.uptime_s),
      st.ready ? plural(running, "browser") : "not ready: " + (st.not_ready || "starting"),
      st.workers + "/" + st.capacity + " workers",
      st.queue.depth + " queued",
      st.sessions.connected + " connected",
    ];
    el.textContent = parts.join(" · ");
    el.dataset.state = !st.ready ? "down" : st.queue.depth > 0 ? "busy" : "ok";
  } catch (e) {
    el.textContent = "Server status unavailable (" + e.message + ")";
    el.dataset.state = "down";
  }
}

// --- wiring ---
function init() {
  const token = $("token");
  token.value = load(TOKEN_KEY);
  token.addEventListener("change", () => save(TOKEN_KEY, token.value.trim()));
  $("show-token").addEventListener("click", () => {
    const show = token.type === "password";
    token.type = show ? "text" : "password";
    $("show-token").textContent = show ? "Hide" : "Show";
    $("show-token").setAttribute("aria-pressed", String(show));
  });
  $("forget").addEventListener("click", () => {
    save(TOKEN_KEY, "");
    token.value = "";
    token.focus();
  });
  $("custom-url").addEventListener("change", () => save(CUSTOM_KEY, $("custom-url").value.trim()));
  renderWorkers();
  $("connect-form").addEventListener("submit", onConnect);
  $("disconnect").addEventListener("click", () => {
    if (state.abort) state.abort.abort();
    if (state.session) endSession("Disconnected.");
  });
  $("message-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const m = $("message");
    const w = currentWorker();
    if (!m.value) return;
    sendText(m.value);
    if (w.id !== "echo") m.select(); else m.value = "";
  });
  $("ping").addEventListener("click", sendPings);
  drawChart();
  setConnectedUI(false);
  refreshStatus();
  setInterval(refreshStatus, STATUS_EVERY_MS);
  document.documentElement.dataset.ready = "1";
}

init();
