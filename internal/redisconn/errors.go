package redisconn

import (
	"context"
	"errors"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Class is what a Redis error says about making the same call again.
type Class int

const (
	// Unknown is an error reply Classify does not know (and a nil
	// error): whether it passes is for the caller to guess.
	Unknown Class = iota
	// Transient may pass by itself: the connection broke or timed out
	// (any error that is not a reply of the server), or the server is out
	// of memory, loading, running a script too long, failing over,
	// moving a slot or lacking replicas (OOM, LOADING, BUSY, READONLY,
	// TRYAGAIN, CLUSTERDOWN, MASTERDOWN, MOVED, ASK, NOREPLICAS).
	Transient
	// Stopped means the call's context was cancelled or ran out of time. The
	// server said nothing about the call.
	Stopped
	// Denied means the server will not take calls of this user as it is
	// configured (WRONGPASS, NOAUTH, NOPERM, a script calling a command
	// the user may not run, an unknown command, no such
	// database). Someone has to change the ACL or the configuration.
	Denied
	// Refused means the server refused this command on this value (WRONGTYPE,
	// BUSYKEY, BUSYGROUP): the same call fails the same way again.
	Refused
)

// String names the class, for logs and tests.
func (c Class) String() string {
	switch c {
	case Unknown:
		return "unknown"
	case Transient:
		return "transient"
	case Stopped:
		return "stopped"
	case Denied:
		return "denied"
	case Refused:
		return "refused"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// transientCodes are the error codes of a server that may answer the
// same call differently soon.
var transientCodes = []string{"OOM", "LOADING", "BUSY", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "MOVED", "ASK", "NOREPLICAS"}

// deniedPrefixes start the replies that refuse the user, not the value.
var deniedPrefixes = []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR unknown command", "ERR DB index", "ERR invalid DB index"}

// refusedCodes are the codes of replies that refuse the value.
var refusedCodes = []string{"WRONGTYPE", "BUSYKEY", "BUSYGROUP"}

// Classify says what err, returned by a call to Redis (possibly
// wrapped), means for calling again. A server's error code is its
// reply's first word, compared whole: BUSY (a script running too long)
// is transient, BUSYGROUP and BUSYKEY are not. A transient code anywhere
// in the message, as a word, counts too: a wrapped error, or a script's
// error that quotes the reply of the command it called.
func Classify(err error) Class {
	if err == nil {
		return Unknown
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Stopped
	}
	msg := err.Error()
	code, _, _ := strings.Cut(msg, " ")
	for _, p := range transientCodes {
		if code == p || strings.Contains(msg, " "+p+" ") {
			return Transient
		}
	}
	// The reply itself, without what wrapped it. The words of a denial or
	// a refusal are Redis's own, matched also in an error that is not a
	// reply (a script's answer, passed on as text).
	var reply goredis.Error
	isReply := errors.As(err, &reply)
	own := msg
	if isReply {
		own = reply.Error()
	}
	ownCode, _, _ := strings.Cut(own, " ")
	for _, p := range deniedPrefixes {
		if strings.HasPrefix(msg, p) || strings.HasPrefix(own, p) {
			return Denied
		}
	}
	if strings.Contains(msg, "The user executing the script can't run") {
		return Denied
	}
	for _, p := range refusedCodes {
		if code == p || ownCode == p {
			return Refused
		}
	}
	if !isReply {
		// Anything else that is not a reply from the server is the
		// connection.
		return Transient
	}
	return Unknown
}
