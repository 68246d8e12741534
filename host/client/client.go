package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/wire"
)

// ErrProtocol reports a frame from the server that breaks the protocol.
var ErrProtocol = errors.New("protocol error")

// errPeerFailed stops the negotiation once the peer connection failed.
var errPeerFailed = errors.New("peer connection failed")

// iceFailedTimeout, when set (by tests), replaces pion's ICE failed
// timeout (25 s).
var iceFailedTimeout time.Duration

// peerFailGrace is how long Dial waits for the server's 305 once its own
// peer connection failed.
const peerFailGrace = 3 * time.Second

// summarize names the candidate types and addresses in candidate lines:
// "host 192.0.2.1, mDNS .local name", or "no candidates".
func summarize(lines []string) string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(strings.TrimPrefix(l, "a="))
		if len(f) < 8 {
			continue
		}
		k := f[7] + " " + f[4]
		if strings.HasSuffix(f[4], ".local") {
			k = "mDNS .local name"
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return "no candidates"
	}
	return strings.Join(out, ", ")
}

// Options configure Dial. The zero value works against `geckohost serve`
// with its defaults, on the same machine (over loopback, or over a LAN
// address) as on another one: the client gathers on every interface,
// loopback included, and uses the ICE servers the server offers on GET
// /ice-servers (its TURN relay, with short-lived credentials), if any.
type Options struct {
	// Token is the bearer token sent in the hello.
	Token string
	// Source is the worker JavaScript URL.
	Source string
	// ICEServers are stun:/turn: URLs (without credentials) for the
	// client's peer connection.
	ICEServers []string
	// ICEServerEntries are ICE servers with credentials (such as the
	// entries of GET /ice-servers), used with ICEServers.
	ICEServerEntries []webrtc.ICEServer
	// NoFetchICEServers keeps Dial from asking the server's GET
	// /ice-servers, which it does (within 3 s; going on without when the
	// server has none or does not answer) when ICEServers and
	// ICEServerEntries are empty and Loopback is off.
	NoFetchICEServers bool
	// Loopback restricts the client to loopback UDP4 candidates (no mDNS,
	// no ICE servers), for a server on the same machine (such as one
	// started with --ice-loopback). Without it the client gathers on every
	// interface, loopback included.
	Loopback bool
	// Header is sent with the WebSocket handshake (e.g. Origin).
	Header http.Header
	// HTTPClient makes the WebSocket handshake and GET /ice-servers (for
	// wss://, its Transport's TLSClientConfig.RootCAs can trust a private
	// CA); nil means http.DefaultClient.
	HTTPClient *http.Client
	// GatherFirst gathers every candidate before the hello and sends them
	// in the offer instead of trickling them (on loopback gathering takes
	// about a millisecond, and the worker can start ICE checks at once).
	GatherFirst bool
	// CandidatesAfterAnswer holds the client's ICE candidates back until the
	// worker's answer arrived (to test servers; normally they trickle from
	// right after the hello).
	CandidatesAfterAnswer bool
	// StockNomination leaves pion's ICE nomination as it is: by default the
	// client makes pion nominate as soon as the worker's check and its own
	// have met (see nudgeNet), which saves about 20 ms, sometimes 200 ms,
	// per session. For comparisons.
	StockNomination bool
	// Trace records the steps of the negotiation in Session.Steps.
	Trace bool
	// Label is the data channel label; "" means "geckohost".
	Label string
	// Logger gets debug logs; nil discards them.
	Logger *slog.Logger
}

// Timings are durations since the hello was sent.
type Timings struct {
	// Answer is when the worker-hello (SDP answer) arrived.
	Answer time.Duration
	// Connected is when the server's "connected" frame arrived.
	Connected time.Duration
	// Open is when the client's data channel opened.
	Open time.Duration
}

// Session is a worker the client is connected to peer to peer.
type Session struct {
	// WorkerID is the server's id for the worker.
	WorkerID string
	// Channel is the open data channel to the worker.
	Channel *webrtc.DataChannel
	// PC is the client's peer connection.
	PC *webrtc.PeerConnection
	// Timings of the negotiation.
	Timings Timings
	// Steps of the negotiation, in order (only with Options.Trace).
	Steps []Step
}

// Close closes the peer connection (the worker sees the channel close).
func (s *Session) Close() error {
	if err := s.PC.Close(); err != nil {
		return fmt.Errorf("close peer connection: %w", err)
	}
	return nil
}

// NewAPI returns the pion API Dial uses for opts (exported for tools that
// build their own peer connections with the same settings).
func NewAPI(opts Options) *webrtc.API { return newAPI(opts, nil) }

// newAPI is NewAPI; onNudge, if not nil, is called on each nudge.
func newAPI(opts Options, onNudge func()) *webrtc.API {
	var se webrtc.SettingEngine
	se.SetPrflxAcceptanceMinWait(0)
	// pion waits 2 s before it settles for a relayed pair (for a better
	// one to succeed meanwhile); a LAN's host pair succeeds within
	// milliseconds, and where only the relay works 2 s is a long wait.
	se.SetRelayAcceptanceMinWait(250 * time.Millisecond)
	// Loopback candidates too: a worker on this machine is reachable on
	// 127.0.0.1 even when it has no other address in common with us
	// (geckohost withholds them from clients on other machines).
	se.SetIncludeLoopbackCandidate(true)
	if iceFailedTimeout > 0 {
		se.SetICETimeouts(iceFailedTimeout/2, iceFailedTimeout, time.Second)
	}
	if opts.Loopback {
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetIncludeLoopbackCandidate(true)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	if !opts.StockNomination {
		if n := newNudgeNet(onNudge); n != nil {
			se.SetNet(n)
		}
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// Dial connects to the geckohost signaling endpoint at url (ws:// or
// wss://), asks for a worker running opts.Source and returns once the
// server said "connected" and the data channel is open. A worker-error
// frame is returned as a *engine.Error; so is a peer connection that
// failed before the server said why (errno 305, PEER_CONNECTION_FAILED).
// ctx bounds the whole negotiation; on failure everything Dial made is
// closed.
func Dial(ctx context.Context, url string, opts Options) (*Session, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	label := opts.Label
	if label == "" {
		label = "geckohost"
	}
	cfg := webrtc.Configuration{}
	if len(opts.ICEServers) > 0 {
		cfg.ICEServers = []webrtc.ICEServer{{URLs: opts.ICEServers}}
	}
	cfg.ICEServers = append(cfg.ICEServers, opts.ICEServerEntries...)
	if len(cfg.ICEServers) == 0 && !opts.Loopback && !opts.NoFetchICEServers {
		servers, err := fetchICEServers(ctx, opts.HTTPClient, url, opts.Token, opts.Header)
		if err != nil {
			log.Debug("client: no ICE servers from the server", "err", err)
		}
		cfg.ICEServers = servers
	}
	tr := newTracer(opts.Trace)
	var onNudge func()
	if tr != nil {
		onNudge = func() { tr.step("nudge", "") }
	}
	pc, err := newAPI(opts, onNudge).NewPeerConnection(cfg)
	if err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	tr.watch(pc)
	s, err := negotiate(ctx, url, opts, label, pc, log, tr)
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	return s, nil
}

// negotiation is one Dial's signaling: the WebSocket, the peer
// connection's candidates both ways, and what the server said.
type negotiation struct {
	ctx  context.Context
	opts Options
	pc   *webrtc.PeerConnection
	ws   *websocket.Conn
	log  *slog.Logger
	tr   *tracer
	s    *Session

	opened chan struct{} // closed when the data channel opens
	openAt time.Time
	start  time.Time // the hello was sent

	// Candidates are written by pion's callback goroutine; writes are
	// serialised by wmu and stop once negotiate returns (finish sets done
	// under wmu, so after it no write is in flight and none starts).
	wmu  sync.Mutex
	done bool
	werr error // the first failed candidate write

	cmu         sync.Mutex
	helloSent   bool
	pendingCand []engine.Candidate // gathered before the hello
	localLines  []string           // offered, for a 305 of our own
	remoteLines []string

	rctx     context.Context // reading; cancelled with errPeerFailed
	stopRead context.CancelCauseFunc
	fmu      sync.Mutex
	finished bool
	failT    *time.Timer

	answered, connected bool
	early               []engine.Candidate // worker candidates before its answer
}

// negotiate runs the signaling of Dial on pc: data channel, WebSocket,
// hello, then the server's frames until "connected" and the channel open.
func negotiate(ctx context.Context, url string, opts Options, label string, pc *webrtc.PeerConnection, log *slog.Logger, tr *tracer) (*Session, error) {
	n := &negotiation{ctx: ctx, opts: opts, pc: pc, log: log, tr: tr, opened: make(chan struct{})}
	dc, err := n.channel(label)
	if err != nil {
		return nil, err
	}
	n.s = &Session{Channel: dc, PC: pc}
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: opts.Header, HTTPClient: opts.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("dial signaling: %w", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	n.ws = ws
	defer n.finish()
	pc.OnICECandidate(n.onCandidate)
	if err := n.hello(); err != nil {
		return nil, err
	}
	n.watchFailure()
	if err := n.readUntilConnected(); err != nil {
		return nil, err
	}
	if err := n.waitOpen(); err != nil {
		return nil, err
	}
	// The server closes the socket after "connected".
	_ = ws.Close(websocket.StatusNormalClosure, "")
	return n.s, nil
}

// channel creates the data channel and notes when it opens.
func (n *negotiation) channel(label string) (*webrtc.DataChannel, error) {
	dc, err := n.pc.CreateDataChannel(label, nil)
	if err != nil {
		return nil, fmt.Errorf("create data channel: %w", err)
	}
	var once sync.Once
	dc.OnOpen(func() {
		once.Do(func() {
			n.openAt = time.Now()
			n.tr.step("open", "")
			close(n.opened)
		})
	})
	return dc, nil
}

// finish stops the candidate writes and the failure timer.
func (n *negotiation) finish() {
	n.wmu.Lock()
	n.done = true
	n.wmu.Unlock()
	n.fmu.Lock()
	n.finished = true
	if n.failT != nil {
		n.failT.Stop()
	}
	n.fmu.Unlock()
	if n.stopRead != nil {
		n.stopRead(nil)
	}
}

// write sends one frame (none once negotiate returned).
func (n *negotiation) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.done {
		return nil
	}
	if err := n.ws.Write(n.ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// sendCand writes a client-candidate; a failure is kept (logged at the end).
func (n *negotiation) sendCand(c engine.Candidate) {
	if err := n.write(wire.NewClientCandidate(c)); err != nil {
		n.wmu.Lock()
		if n.werr == nil {
			n.werr = err
		}
		n.wmu.Unlock()
	}
}

// onCandidate is pion's: a gathered candidate (nil: the end) is sent,
// or kept until the hello is.
func (n *negotiation) onCandidate(c *webrtc.ICECandidate) {
	wc := engine.Candidate{}
	if c != nil {
		ci := c.ToJSON()
		wc = engine.Candidate{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex, UsernameFragment: ci.UsernameFragment}
	}
	n.cmu.Lock()
	defer n.cmu.Unlock()
	if wc.Candidate != "" {
		n.localLines = append(n.localLines, wc.Candidate)
	}
	if n.opts.GatherFirst {
		return // the offer carries them
	}
	if !n.helloSent {
		n.pendingCand = append(n.pendingCand, wc)
		return
	}
	n.sendCand(wc)
}

// flush sends the candidates kept for after the hello. Caller holds cmu.
func (n *negotiation) flush() {
	n.helloSent = true
	for _, c := range n.pendingCand {
		n.sendCand(c)
	}
	n.pendingCand = nil
}

// hello makes the offer (with every candidate in it under GatherFirst)
// and sends the client-hello, then the candidates gathered meanwhile.
func (n *negotiation) hello() error {
	pc := n.pc
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	var gathered <-chan struct{}
	if n.opts.GatherFirst {
		gathered = webrtc.GatheringCompletePromise(pc)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("set local description: %w", err)
	}
	sdp := offer.SDP
	if n.opts.GatherFirst {
		select {
		case <-gathered:
		case <-n.ctx.Done():
			return fmt.Errorf("gather candidates: %w", n.ctx.Err())
		}
		sdp = pc.LocalDescription().SDP // candidates included
		n.cmu.Lock()
		n.pendingCand = nil // in the offer already
		n.helloSent = true
		n.cmu.Unlock()
	}
	n.start = time.Now()
	n.tr.begin(n.start)
	n.cmu.Lock()
	defer n.cmu.Unlock()
	err = n.write(wire.NewClientHello(n.opts.Token, n.opts.Source, sdp))
	if !n.opts.CandidatesAfterAnswer {
		n.flush()
	}
	return err
}

// watchFailure: once our peer connection failed, the server's 305
// (naming both sides' candidates) is usually on its way; wait for it a
// little, then stop reading and say what we know.
func (n *negotiation) watchFailure() {
	n.rctx, n.stopRead = context.WithCancelCause(n.ctx)
	n.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		n.fmu.Lock()
		defer n.fmu.Unlock()
		if st == webrtc.PeerConnectionStateFailed && !n.finished && n.failT == nil {
			n.failT = time.AfterFunc(peerFailGrace, func() { n.stopRead(errPeerFailed) })
		}
	})
}

// peerFailed is our own 305.
func (n *negotiation) peerFailed() error {
	n.cmu.Lock()
	defer n.cmu.Unlock()
	return engine.Errorf(engine.PeerConnectionFailed, "the peer connection to the worker failed: the client offered %s, the worker offered %s",
		summarize(n.localLines), summarize(n.remoteLines))
}

// readUntilConnected reads the server's frames until "connected".
func (n *negotiation) readUntilConnected() error {
	for !n.connected {
		typ, b, err := n.ws.Read(n.rctx)
		if err != nil {
			if errors.Is(context.Cause(n.rctx), errPeerFailed) {
				return n.peerFailed()
			}
			if websocket.CloseStatus(err) != -1 {
				return fmt.Errorf("read signaling: server closed before connected: %w", err)
			}
			return fmt.Errorf("read signaling: %w", err)
		}
		if typ != websocket.MessageText {
			return fmt.Errorf("read signaling: binary frame: %w", ErrProtocol)
		}
		f, err := wire.ParseServerFrame(b)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		if err := n.handle(f); err != nil {
			return err
		}
	}
	return nil
}

// handle applies one frame of the server.
func (n *negotiation) handle(f wire.ServerFrame) error {
	if f.WorkerID != "" && n.s.WorkerID == "" {
		n.s.WorkerID = f.WorkerID
	}
	n.log.Debug("client: frame", "kind", f.Kind.String())
	switch f.Kind {
	case wire.FrameWorkerError:
		return f.Error
	case wire.FrameWorkerHello:
		return n.answer(f.Answer)
	case wire.FrameWorkerCandidate:
		if f.Candidate.Candidate == "" {
			n.tr.step("worker candidate", "end")
		} else {
			n.tr.step("worker candidate", candidateType(f.Candidate.Candidate))
		}
		if !n.answered {
			n.early = append(n.early, f.Candidate)
			return nil
		}
		return n.addCand(f.Candidate)
	case wire.FrameConnected:
		n.s.Timings.Connected = time.Since(n.start)
		n.tr.step("connected", "")
		n.connected = true
	}
	return nil
}

// answer applies the worker's SDP answer, then the candidates held back.
func (n *negotiation) answer(sdp string) error {
	n.s.Timings.Answer = time.Since(n.start)
	n.tr.step("worker-hello", "")
	n.cmu.Lock()
	for line := range strings.Lines(sdp) {
		if strings.HasPrefix(line, "a=candidate:") {
			n.remoteLines = append(n.remoteLines, strings.TrimSpace(line))
		}
	}
	n.cmu.Unlock()
	if err := n.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return fmt.Errorf("set answer: %w", err)
	}
	n.tr.step("answer applied", "")
	n.answered = true
	if n.opts.CandidatesAfterAnswer {
		n.cmu.Lock()
		n.flush()
		n.cmu.Unlock()
	}
	for _, c := range n.early {
		if err := n.addCand(c); err != nil {
			return err
		}
	}
	n.early = nil
	return nil
}

// addCand applies one worker candidate.
func (n *negotiation) addCand(c engine.Candidate) error {
	if c.Candidate == "" {
		return nil // end of candidates: pion needs nothing
	}
	n.cmu.Lock()
	n.remoteLines = append(n.remoteLines, c.Candidate)
	n.cmu.Unlock()
	err := n.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
	if err != nil {
		return fmt.Errorf("add worker candidate: %w", err)
	}
	return nil
}

// waitOpen waits for the data channel to open after "connected".
func (n *negotiation) waitOpen() error {
	select {
	case <-n.opened:
	case <-n.rctx.Done():
		if errors.Is(context.Cause(n.rctx), errPeerFailed) {
			return n.peerFailed()
		}
		return fmt.Errorf("wait for data channel open: %w", n.ctx.Err())
	}
	n.s.Timings.Open = n.openAt.Sub(n.start)
	n.s.Steps = n.tr.done()
	n.wmu.Lock()
	err := n.werr
	n.wmu.Unlock()
	if err != nil {
		n.log.Debug("client: candidate write failed", "err", err)
	}
	return nil
}
