package bidi

import (
	"context"
	"encoding/json"
	"fmt"
)

// NewSession sends session.new with the capabilities geckohost needs
// (acceptInsecureCerts false, unhandled prompts ignored). Firefox answers
// only once its start-up has finished, so this is also the "browser ready"
// signal.
func (c *Conn) NewSession(ctx context.Context) error {
	params := map[string]any{
		"capabilities": map[string]any{
			"alwaysMatch": map[string]any{
				"acceptInsecureCerts":     false,
				"unhandledPromptBehavior": map[string]any{"default": "ignore"},
			},
		},
	}
	if err := c.Call(ctx, "session.new", params, nil); err != nil {
		return fmt.Errorf("start bidi session: %w", err)
	}
	return nil
}

// Subscribe subscribes to events (such as "script.message" or
// "log.entryAdded") with session.subscribe, globally when contexts is
// empty, else for those top-level browsing contexts.
func (c *Conn) Subscribe(ctx context.Context, events []string, contexts []string) error {
	params := map[string]any{"events": events}
	if len(contexts) > 0 {
		params["contexts"] = contexts
	}
	return c.Call(ctx, "session.subscribe", params, nil)
}

// CreateUserContext creates a user context (a separate cookie jar and
// storage) with browser.createUserContext and returns its id.
func (c *Conn) CreateUserContext(ctx context.Context) (string, error) {
	var r struct {
		UserContext string `json:"userContext"`
	}
	if err := c.Call(ctx, "browser.createUserContext", nil, &r); err != nil {
		return "", err
	}
	if r.UserContext == "" {
		return "", fmt.Errorf("create user context: %w: empty id", ErrBadMessage)
	}
	return r.UserContext, nil
}

// CreateUserContextSOCKS creates a user context like CreateUserContext
// whose requests all go through the SOCKS5 proxy at addr (host:port), with
// names resolved by the proxy (browser.createUserContext's proxy
// parameter, manual, socksVersion 5).
func (c *Conn) CreateUserContextSOCKS(ctx context.Context, addr string) (string, error) {
	params := map[string]any{"proxy": map[string]any{"proxyType": "manual", "socksProxy": addr, "socksVersion": 5}}
	var r struct {
		UserContext string `json:"userContext"`
	}
	if err := c.Call(ctx, "browser.createUserContext", params, &r); err != nil {
		return "", err
	}
	if r.UserContext == "" {
		return "", fmt.Errorf("create user context: %w: empty id", ErrBadMessage)
	}
	return r.UserContext, nil
}

// RemoveUserContext removes a user context and closes its tabs
// (browser.removeUserContext).
func (c *Conn) RemoveUserContext(ctx context.Context, id string) error {
	return c.Call(ctx, "browser.removeUserContext", map[string]any{"userContext": id}, nil)
}

// CreateTab opens a background tab in userContext ("" for the default user
// context) with browsingContext.create and returns its browsing context id.
func (c *Conn) CreateTab(ctx context.Context, userContext string) (string, error) {
	params := map[string]any{"type": "tab", "background": true}
	if userContext != "" {
		params["userContext"] = userContext
	}
	var r struct {
		Context string `json:"context"`
	}
	if err := c.Call(ctx, "browsingContext.create", params, &r); err != nil {
		return "", err
	}
	if r.Context == "" {
		return "", fmt.Errorf("create tab: %w: empty id", ErrBadMessage)
	}
	return r.Context, nil
}

// Navigate loads url in the browsing context and waits until the page's
// load is complete (browsingContext.navigate, wait "complete").
func (c *Conn) Navigate(ctx context.Context, browsingContext, url string) error {
	params := map[string]any{"context": browsingContext, "url": url, "wait": "complete"}
	return c.Call(ctx, "browsingContext.navigate", params, nil)
}

// CloseContext closes a browsing context (browsingContext.close).
func (c *Conn) CloseContext(ctx context.Context, browsingContext string) error {
	return c.Call(ctx, "browsingContext.close", map[string]any{"context": browsingContext}, nil)
}

// CloseBrowser asks the browser to close all its windows and exit
// (browser.close). The remote end closes the socket soon after.
func (c *Conn) CloseBrowser(ctx context.Context) error {
	return c.Call(ctx, "browser.close", nil, nil)
}

// CallFunctionParams are the parameters of CallFunction.
type CallFunctionParams struct {
	// FunctionDeclaration is the JavaScript function's source, such as
	// "(a, b) => a + b" or "async function(ch) { ... }".
	FunctionDeclaration string
	// Context is the browsing context whose page realm runs the function.
	// Ignored when Realm is set.
	Context string
	// Realm, when set, is the realm that runs the function.
	Realm string
	// Args are the function's arguments as BiDi LocalValues; see StringArg
	// and ChannelArg.
	Args []any
	// AwaitPromise makes the call wait for a returned promise to settle.
	AwaitPromise bool
	// UserActivation runs the function as if the user had just interacted
	// with the page.
	UserActivation bool
}

// CallFunction runs a function in a page with script.callFunction and
// returns its result as RemoteValue JSON (see StringValue and Value). A
// thrown exception (or rejected promise, with AwaitPromise) is returned as
// *ScriptError.
func (c *Conn) CallFunction(ctx context.Context, p CallFunctionParams) (json.RawMessage, error) {
	target := map[string]any{"context": p.Context}
	if p.Realm != "" {
		target = map[string]any{"realm": p.Realm}
	}
	args := p.Args
	if args == nil {
		args = []any{}
	}
	params := map[string]any{
		"functionDeclaration": p.FunctionDeclaration,
		"awaitPromise":        p.AwaitPromise,
		"target":              target,
		"arguments":           args,
		"resultOwnership":     "none",
		"userActivation":      p.UserActivation,
	}
	var r struct {
		Type             string          `json:"type"`
		Result           json.RawMessage `json:"result"`
		ExceptionDetails struct {
			Text         string          `json:"text"`
			LineNumber   int             `json:"lineNumber"`
			ColumnNumber int             `json:"columnNumber"`
			Exception    json.RawMessage `json:"exception"`
			StackTrace   json.RawMessage `json:"stackTrace"`
		} `json:"exceptionDetails"`
	}
	if err := c.Call(ctx, "script.callFunction", params, &r); err != nil {
		return nil, err
	}
	switch r.Type {
	case "success":
		return r.Result, nil
	case "exception":
		d := r.ExceptionDetails
		return nil, &ScriptError{
			Text:         d.Text,
			LineNumber:   d.LineNumber,
			ColumnNumber: d.ColumnNumber,
			Exception:    d.Exception,
			StackTrace:   d.StackTrace,
		}
	default:
		return nil, fmt.Errorf("call function: %w: result type %q", ErrBadMessage, r.Type)
	}
}

// AddPreloadScript registers fn (a function declaration) to run in every
// new page realm before the page's own scripts (script.addPreloadScript),
// with args (typically ChannelArg values), for the given user contexts (all
// when empty). It returns the preload script's id.
func (c *Conn) AddPreloadScript(ctx context.Context, fn string, args []any, userContexts []string) (string, error) {
	params := map[string]any{"functionDeclaration": fn}
	if len(args) > 0 {
		params["arguments"] = args
	}
	if len(userContexts) > 0 {
		params["userContexts"] = userContexts
	}
	var r struct {
		Script string `json:"script"`
	}
	if err := c.Call(ctx, "script.addPreloadScript", params, &r); err != nil {
		return "", err
	}
	return r.Script, nil
}

// RemovePreloadScript removes a preload script added with AddPreloadScript.
func (c *Conn) RemovePreloadScript(ctx context.Context, id string) error {
	return c.Call(ctx, "script.removePreloadScript", map[string]any{"script": id}, nil)
}

// ChannelArg returns a channel LocalValue for CallFunction or
// AddPreloadScript: the function receives a function that, called with a
// value, emits a "script.message" event with this channel name.
func ChannelArg(channel string) any {
	return map[string]any{
		"type":  "channel",
		"value": map[string]any{"channel": channel, "ownership": "none"},
	}
}

// StringArg returns a string LocalValue.
func StringArg(s string) any {
	return map[string]any{"type": "string", "value": s}
}

// EvaluateChrome evaluates expression in the browser's privileged (chrome)
// scope, in its first top-level chrome window, awaiting a returned promise,
// and returns the result as RemoteValue JSON. Firefox allows it only when
// started with --remote-allow-system-access ("moz:scope": "chrome", a
// Firefox extension of WebDriver BiDi).
func (c *Conn) EvaluateChrome(ctx context.Context, expression string) (json.RawMessage, error) {
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := c.Call(ctx, "browsingContext.getTree", map[string]any{"moz:scope": "chrome", "maxDepth": 0}, &tree); err != nil {
		return nil, fmt.Errorf("find the chrome window: %w", err)
	}
	if len(tree.Contexts) == 0 {
		return nil, fmt.Errorf("find the chrome window: %w: none", ErrBadMessage)
	}
	var r struct {
		Type             string          `json:"type"`
		Result           json.RawMessage `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := c.Call(ctx, "script.evaluate", map[string]any{
		"expression":      expression,
		"target":          map[string]any{"context": tree.Contexts[0].Context},
		"awaitPromise":    true,
		"resultOwnership": "none",
		"moz:scope":       "chrome",
	}, &r)
	if err != nil {
		return nil, err
	}
	if r.Type != "success" {
		return nil, &ScriptError{Text: r.ExceptionDetails.Text}
	}
	return r.Result, nil
}
