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

type serverFrame struct {
	MessageType  string            `json:"messageType"`
	Action       string            `json:"action"`
	WorkerID     *string           `json:"workerId"`
	WebRTCAnswer string            `json:"webrtcAnswer"`
	Candidate    *engine.Candidate `json:"candidate"`
	Errno        int               `json:"errno"`
	Reason       string            `json:"reason"`
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

func negotiate(ctx context.Context, url string, opts Options, label string, pc *webrtc.PeerConnection, log *slog.Logger, tr *tracer) (*Session, error) {
	dc, err := pc.CreateDataChannel(label, nil)
	if err != nil {
		return nil, fmt.Errorf("create data channel: %w", err)
	}
	opened := make(chan struct{})
	var (
		openOnce sync.Once
		openAt   time.Time
	)
	dc.OnOpen(func() {
		openOnce.Do(func() {
			openAt = time.Now()
			tr.step("open", "")
			close(opened)
		})
	})

	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: opts.Header, HTTPClient: opts.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("dial signaling: %w", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)

	// Candidates are written by pion's callback goroutine; writes are
	// serialised by wmu and stop once negotiate returns: the deferred
	// function below sets done under wmu, so after it no write is in flight
	// and none starts.
	var (
		wmu    sync.Mutex
		done   bool
		werr   error
		werrMu sync.Mutex
	)
	write := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode frame: %w", err)
		}
		wmu.Lock()
		defer wmu.Unlock()
		if done {
			return nil
		}
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			return fmt.Errorf("write frame: %w", err)
		}
		return nil
	}
	defer func() {
		wmu.Lock()
		done = true
		wmu.Unlock()
	}()

	var (
		cmu         sync.Mutex
		helloSent   bool
		pendingCand []engine.Candidate
		localLines  []string // offered, for a 305 of our own
		remoteLines []string
	)
	sendCand := func(c engine.Candidate) {
		err := write(map[string]any{"messageType": "ice", "action": "client-candidate", "candidate": c})
		if err != nil {
			werrMu.Lock()
			werr = err
			werrMu.Unlock()
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		wc := engine.Candidate{}
		if c != nil {
			ci := c.ToJSON()
			wc = engine.Candidate{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex, UsernameFragment: ci.UsernameFragment}
		}
		cmu.Lock()
		defer cmu.Unlock()
		if wc.Candidate != "" {
			localLines = append(localLines, wc.Candidate)
		}
		if opts.GatherFirst {
			return // the offer carries them
		}
		if !helloSent {
			pendingCand = append(pendingCand, wc)
			return
		}
		sendCand(wc)
	})

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("create offer: %w", err)
	}
	var gathered <-chan struct{}
	if opts.GatherFirst {
		gathered = webrtc.GatheringCompletePromise(pc)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("set local description: %w", err)
	}
	sdp := offer.SDP
	if opts.GatherFirst {
		select {
		case <-gathered:
		case <-ctx.Done():
			return nil, fmt.Errorf("gather candidates: %w", ctx.Err())
		}
		sdp = pc.LocalDescription().SDP // candidates included
		cmu.Lock()
		pendingCand = nil // in the offer already
		helloSent = true
		cmu.Unlock()
	}
	start := time.Now()
	tr.begin(start)
	hello := map[string]any{
		"messageType":   "hello",
		"action":        "client-hello",
		"authorization": "Bearer " + opts.Token,
		"source":        opts.Source,
		"webrtcOffer":   sdp,
	}
	flush := func() {
		helloSent = true
		for _, c := range pendingCand {
			sendCand(c)
		}
		pendingCand = nil
	}
	cmu.Lock()
	err = write(hello)
	if !opts.CandidatesAfterAnswer {
		flush()
	}
	cmu.Unlock()
	if err != nil {
		return nil, err
	}

	// Our peer connection failing: the server's 305 (naming both sides'
	// candidates) is usually on its way; wait for it a little, then stop
	// reading and say what we know.
	rctx, stopRead := context.WithCancelCause(ctx)
	defer stopRead(nil)
	var (
		fmu      sync.Mutex
		finished bool
		failT    *time.Timer
	)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		fmu.Lock()
		defer fmu.Unlock()
		if st == webrtc.PeerConnectionStateFailed && !finished && failT == nil {
			failT = time.AfterFunc(peerFailGrace, func() { stopRead(errPeerFailed) })
		}
	})
	defer func() {
		fmu.Lock()
		finished = true
		if failT != nil {
			failT.Stop()
		}
		fmu.Unlock()
	}()
	peerFailed := func() error {
		cmu.Lock()
		defer cmu.Unlock()
		return engine.Errorf(engine.PeerConnectionFailed, "the peer connection to the worker failed: the client offered %s, the worker offered %s",
			summarize(localLines), summarize(remoteLines))
	}

	s := &Session{Channel: dc, PC: pc}
	var (
		answered  bool
		connected bool
		early     []engine.Candidate
	)
	addCand := func(c engine.Candidate) error {
		if c.Candidate == "" {
			return nil // end of candidates: pion needs nothing
		}
		cmu.Lock()
		remoteLines = append(remoteLines, c.Candidate)
		cmu.Unlock()
		err := pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
		if err != nil {
			return fmt.Errorf("add worker candidate: %w", err)
		}
		return nil
	}
	for !connected {
		typ, b, err := ws.Read(rctx)
		if err != nil {
			if errors.Is(context.Cause(rctx), errPeerFailed) {
				return nil, peerFailed()
			}
			if websocket.CloseStatus(err) != -1 {
				return nil, fmt.Errorf("read signaling: server closed before connected: %w", err)
			}
			return nil, fmt.Errorf("read signaling: %w", err)
		}
		if typ != websocket.MessageText {
			return nil, fmt.Errorf("read signaling: binary frame: %w", ErrProtocol)
		}
		var f serverFrame
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("decode frame: %w: %w", ErrProtocol, err)
		}
		if f.WorkerID != nil && s.WorkerID == "" {
			s.WorkerID = *f.WorkerID
		}
		log.Debug("client: frame", "type", f.MessageType, "action", f.Action)
		switch {
		case f.MessageType == "worker-error":
			return nil, &engine.Error{Errno: engine.Errno(f.Errno), Reason: f.Reason}
		case f.MessageType == "hello" && f.Action == "worker-hello":
			s.Timings.Answer = time.Since(start)
			tr.step("worker-hello", "")
			cmu.Lock()
			for line := range strings.Lines(f.WebRTCAnswer) {
				if strings.HasPrefix(line, "a=candidate:") {
					remoteLines = append(remoteLines, strings.TrimSpace(line))
				}
			}
			cmu.Unlock()
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: f.WebRTCAnswer}); err != nil {
				return nil, fmt.Errorf("set answer: %w", err)
			}
			tr.step("answer applied", "")
			answered = true
			if opts.CandidatesAfterAnswer {
				cmu.Lock()
				flush()
				cmu.Unlock()
			}
			for _, c := range early {
				if err := addCand(c); err != nil {
					return nil, err
				}
			}
			early = nil
		case f.MessageType == "ice" && f.Action == "worker-candidate":
			if f.Candidate == nil {
				return nil, fmt.Errorf("worker-candidate without candidate: %w", ErrProtocol)
			}
			if f.Candidate.Candidate == "" {
				tr.step("worker candidate", "end")
			} else {
				tr.step("worker candidate", candidateType(f.Candidate.Candidate))
			}
			if !answered {
				early = append(early, *f.Candidate)
				continue
			}
			if err := addCand(*f.Candidate); err != nil {
				return nil, err
			}
		case f.MessageType == "connected":
			s.Timings.Connected = time.Since(start)
			tr.step("connected", "")
			connected = true
		default:
			return nil, fmt.Errorf("unexpected frame %q/%q: %w", f.MessageType, f.Action, ErrProtocol)
		}
	}
	select {
	case <-opened:
	case <-rctx.Done():
		if errors.Is(context.Cause(rctx), errPeerFailed) {
			return nil, peerFailed()
		}
		return nil, fmt.Errorf("wait for data channel open: %w", ctx.Err())
	}
	s.Timings.Open = openAt.Sub(start)
	s.Steps = tr.done()
	werrMu.Lock()
	err = werr
	werrMu.Unlock()
	if err != nil {
		log.Debug("client: candidate write failed", "err", err)
	}
	// The server closes the socket after "connected".
	_ = ws.Close(websocket.StatusNormalClosure, "")
	return s, nil
}
