package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
)

// notifyClasses are the keyspace notification classes live capture needs:
// keyevent notifications (E) for generic commands (g: DEL, EXPIRE, RENAME,
// MOVE, COPY, RESTORE, PERSIST…), every type ($ l s h z, and t, d so that a
// stream or module key is noticed and reported), expired (x) and evicted
// (e) keys. "A" is Redis' alias for g$lshzxetd.
const notifyClasses = "Eg$lshzxetd"

// ErrNotificationsOff is returned when keyspace notifications are not
// enabled and cutover may not enable them.
var ErrNotificationsOff = errors.New("redis keyspace notifications are off")

// missingNotifyFlags returns the classes of notifyClasses that flags (the
// value of notify-keyspace-events) lacks.
func missingNotifyFlags(flags string) string {
	have := strings.ReplaceAll(flags, "A", "g$lshzxetd")
	var missing strings.Builder
	for _, c := range notifyClasses {
		if !strings.ContainsRune(have, c) {
			missing.WriteRune(c)
		}
	}
	return missing.String()
}

// EnsureNotifications makes sure the server publishes the keyspace events
// live capture needs, turning the missing classes on with CONFIG SET (and
// keeping whatever else was on). A server that refuses CONFIG (managed
// Redis) gets an error that says exactly what to set.
func EnsureNotifications(ctx context.Context, cl *goredis.Client, conn redisconn.Conn) error {
	cur, err := cl.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		if isConfigRefused(err) {
			return notifyErr(conn, "", err)
		}
		return redisconn.Explain(conn, err)
	}
	flags := cur["notify-keyspace-events"]
	missing := missingNotifyFlags(flags)
	if missing == "" {
		return nil
	}
	want := mergeFlags(flags, missing)
	if err := cl.ConfigSet(ctx, "notify-keyspace-events", want).Err(); err != nil {
		return notifyErr(conn, flags, err)
	}
	return nil
}

func mergeFlags(flags, missing string) string {
	set := map[rune]bool{}
	for _, c := range flags + missing {
		set[c] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, string(c))
	}
	sort.Strings(out)
	return strings.Join(out, "")
}

func isConfigRefused(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "NOPERM") || strings.Contains(msg, "unknown command") ||
		strings.Contains(msg, "not allowed") || strings.Contains(msg, "disabled")
}

func notifyErr(conn redisconn.Conn, flags string, err error) error {
	return fmt.Errorf("%w on redis %s and cutover may not turn them on (%v): set notify-keyspace-events to include %q "+
		"(for example \"KEA\"; on ElastiCache set the parameter group's notify-keyspace-events to KEA; current value %q)",
		ErrNotificationsOff, conn.Addr, err, notifyClasses, flags)
}
