package cluster

import (
	"encoding/hex"
	"strconv"
)

// The Redis keys, all under keyPrefix:
//
//	geckohost:token:next            INCR counter of token ids
//	geckohost:token:<id>            hash: one token (no secret; its SHA-256)
//	geckohost:token:name:<name>     string: the id of the token with this name
//	geckohost:token:hash:<sha256>   string: the id of the token with this secret hash
//	geckohost:tokens                sorted set: every token id
//	geckohost:live:<token id>       hash: live worker id → node id
//	geckohost:starts:<token id>     sorted set: worker starts (ms) within the rate window
//	geckohost:nodes                 hash: node id → JSON NodeInfo
//	geckohost:nodes:seen            hash: node id → last heartbeat (Redis clock, ms)
//	geckohost:sessions              stream: ended sessions (capped)
//	geckohost:relay:<node id>       pub/sub channel: relay messages to that node
const keyPrefix = "geckohost:"

const (
	keyTokenNext = keyPrefix + "token:next"
	keyTokenBase = keyPrefix + "token:" // + id
	keyTokens    = keyPrefix + "tokens"
	keyNodes     = keyPrefix + "nodes"
	keyNodesSeen = keyPrefix + "nodes:seen"
	keySessions  = keyPrefix + "sessions"
)

func keyToken(id int64) string        { return keyTokenBase + strconv.FormatInt(id, 10) }
func keyTokenName(name string) string { return keyPrefix + "token:name:" + name }
func keyTokenHash(h []byte) string    { return keyPrefix + "token:hash:" + hex.EncodeToString(h) }
func keyLive(tokenID int64) string    { return keyPrefix + "live:" + strconv.FormatInt(tokenID, 10) }
func keyStarts(tokenID int64) string  { return keyPrefix + "starts:" + strconv.FormatInt(tokenID, 10) }
func relayChannel(node string) string { return keyPrefix + "relay:" + node }
