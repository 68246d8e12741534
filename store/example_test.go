package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/store"
)

func Example() {
	dir, err := os.MkdirTemp("", "geckohost-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ctx := context.Background()

	db, err := store.Open(ctx, filepath.Join(dir, "geckohost.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = db.Close() }()

	tok, secret, err := db.AddToken(ctx, domain.NewToken{Name: "me", Sources: []string{"http://127.0.0.1:*"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	found, err := db.LookupToken(ctx, secret)
	fmt.Println(found.Name, found.ID == tok.ID, found.Sources, err)

	if _, err := db.RevokeToken(ctx, "me"); err != nil {
		fmt.Println(err)
		return
	}
	_, err = db.LookupToken(ctx, secret)
	fmt.Println(errors.Is(err, domain.ErrRevoked))

	_ = db.SaveSession(ctx, domain.Session{WorkerID: "w1", TokenID: tok.ID, TokenName: "me", State: domain.StateNegotiating})
	sessions, _ := db.ListSessions(ctx, domain.SessionFilter{TokenName: "me"})
	fmt.Println(len(sessions), sessions[0].State)
	// Output:
	// me true [http://127.0.0.1:*] <nil>
	// true
	// 1 negotiating
}
