package main

import (
	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/store"
)

// tokenStore is where "geckohost token" keeps tokens: the SQLite store
// (--db), or the cluster's Redis (--redis).
type tokenStore interface {
	domain.Tokens
	// Path says where the tokens are (a file, or a Redis URL without its
	// password).
	Path() string
	Close() error
}

// redisTokens is the cluster's token store with its connection.
type redisTokens struct {
	*cluster.Tokens
	c *cluster.Client
}

func (r redisTokens) Close() error { return r.c.Close() }

// openTokenStore opens the Redis named by --redis, else the SQLite store
// named by --db with open (openDB, or openExistingDB for commands that only
// read or change existing tokens).
func openTokenStore(c *cli.Context, open func(*cli.Context) (*store.DB, error)) (tokenStore, error) {
	if redisURL(c) == "" {
		return open(c)
	}
	cl, err := openCluster(c)
	if err != nil {
		return nil, err
	}
	return redisTokens{Tokens: cl.Tokens(), c: cl}, nil
}
