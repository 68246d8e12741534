//go:build tools

package main

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/coder/websocket"
	_ "github.com/mattn/go-sqlite3"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/urfave/cli/v2"
)
