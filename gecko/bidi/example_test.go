package bidi_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/geckohost/geckohost/gecko/bidi"
)

func ExampleValue() {
	// The RemoteValue Firefox returns for ({a: 1, b: ["x", null]}).
	raw := json.RawMessage(`{"type":"object","value":[["a",{"type":"number","value":1}],
		["b",{"type":"array","value":[{"type":"string","value":"x"},{"type":"null"}]}]]}`)
	v, err := bidi.Value(raw)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(v)
	// Output: map[a:1 b:[x <nil>]]
}

// This example opens a session on a Firefox started with
// --remote-debugging-port, loads a page and reads its title. (Not run: it
// needs a browser; the package's tests do the same against a real one.)
func ExampleConn_CallFunction() {
	ctx := context.Background()
	c, err := bidi.Dial(ctx, "ws://127.0.0.1:9222/session", bidi.Options{})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer c.Close()
	if err := c.NewSession(ctx); err != nil {
		fmt.Println("error:", err)
		return
	}
	tab, err := c.CreateTab(ctx, "")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	if err := c.Navigate(ctx, tab, "http://127.0.0.1:8080/"); err != nil {
		fmt.Println("error:", err)
		return
	}
	raw, err := c.CallFunction(ctx, bidi.CallFunctionParams{
		FunctionDeclaration: "() => document.title",
		Context:             tab,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	title, err := bidi.StringValue(raw)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(title)
}
