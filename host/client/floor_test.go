package client_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// BenchmarkPionFloor is pion against pion on loopback, in one process
// (createOffer → data channel open, candidates in the SDP): the
// floor of the pion stack for the handshake a session makes, to set
// beside geckohost bench's figures (README, measurements). It reports
// open_ms per handshake.
func BenchmarkPionFloor(b *testing.B) {
	se := webrtc.SettingEngine{}
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	var total time.Duration
	for b.Loop() {
		d, err := pionHandshake(api)
		if err != nil {
			b.Fatal(err)
		}
		total += d
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "open_ms")
}

// pionHandshake runs one offer/answer between two fresh peer connections
// and returns the time from createOffer to the offerer's channel open.
func pionHandshake(api *webrtc.API) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return 0, err
	}
	defer a.Close()
	z, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return 0, err
	}
	defer z.Close()
	t0 := time.Now()
	dc, err := a.CreateDataChannel("floor", nil)
	if err != nil {
		return 0, err
	}
	open := make(chan struct{})
	dc.OnOpen(func() { close(open) })
	offer, err := a.CreateOffer(nil)
	if err != nil {
		return 0, err
	}
	gathered := webrtc.GatheringCompletePromise(a)
	if err := a.SetLocalDescription(offer); err != nil {
		return 0, err
	}
	<-gathered // loopback host candidates: well under a millisecond
	if err := z.SetRemoteDescription(*a.LocalDescription()); err != nil {
		return 0, err
	}
	answer, err := z.CreateAnswer(nil)
	if err != nil {
		return 0, err
	}
	gathered = webrtc.GatheringCompletePromise(z)
	if err := z.SetLocalDescription(answer); err != nil {
		return 0, err
	}
	<-gathered
	if err := a.SetRemoteDescription(*z.LocalDescription()); err != nil {
		return 0, err
	}
	select {
	case <-open:
		return time.Since(t0), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
