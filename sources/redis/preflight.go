package redis

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// NotifyCheck is what CheckNotifications found.
type NotifyCheck struct {
	// Flags is the server's notify-keyspace-events.
	Flags string
	// Missing are the classes live capture needs that Flags lacks.
	Missing string
	// CanSet is set when the user may CONFIG SET them (ACL DRYRUN said
	// so); Unknown when the server would not say (before Redis 7, or a
	// user who may not run ACL DRYRUN): replicate will just try.
	CanSet, Unknown bool
	// Err says what to set when live capture cannot turn them on.
	Err error
}

// CheckNotifications is EnsureNotifications without changing anything,
// for `cutover plan`: it reads notify-keyspace-events and, when classes
// are missing, asks the server (ACL DRYRUN) whether the user may set them.
func CheckNotifications(ctx context.Context, cl *goredis.Client, conn Conn) NotifyCheck {
	cur, err := cl.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		if isConfigRefused(err) {
			return NotifyCheck{Err: notifyErr(conn, "", err)}
		}
		return NotifyCheck{Err: Explain(conn, err)}
	}
	c := NotifyCheck{Flags: cur["notify-keyspace-events"]}
	if c.Missing = missingNotifyFlags(c.Flags); c.Missing == "" {
		return c
	}
	want := mergeFlags(c.Flags, c.Missing)
	res, err := cl.Do(ctx, "ACL", "DRYRUN", conn.user(), "CONFIG", "SET", "notify-keyspace-events", want).Text()
	switch {
	case err != nil:
		c.Unknown = true
	case res == "OK":
		c.CanSet = true
	default:
		// DRYRUN answers a refusal as a plain string that says why.
		c.Err = notifyErr(conn, c.Flags, fmt.Errorf("%s", strings.TrimSpace(res)))
	}
	return c
}
