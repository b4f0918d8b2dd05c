package test

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// TestRedisTLSAndACL copies from a Redis that only speaks TLS, as an ACL
// user, to a target that also only speaks TLS; a wrong CA, a missing
// --redis-tls and a wrong password each fail at once with a message that
// says what to fix.
func TestRedisTLSAndACL(t *testing.T) {
	t.Parallel()
	f := stack.NewTLSFiles(t)
	src, dst := stack.NewRedisTLS(t, f), stack.NewRedisTLS(t, f)
	ctx := testCtx(t, 2*time.Minute)
	if err := src.Client.Do(ctx, "ACL", "SETUSER", "cutover", "on", ">s3cret", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := datagen.Seed(ctx, src.Client, datagen.Spec{Keys: 2000, Seed: 31}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst, "--redis-tls", "--redis-tls-ca-file", f.CA, "--redis-username", "cutover",
		"--target-redis-tls", "--target-redis-tls-ca-file", f.CA)
	env := []string{"REDIS_PASSWORD=s3cret"}
	if res := stack.RunEnv(ctx, t, env, append([]string{"backfill"}, p.args...)...); res.Code != 0 {
		t.Fatalf("backfill over TLS exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if res := stack.RunEnv(ctx, t, env, append([]string{"reconcile"}, p.args...)...); res.Code != 0 {
		t.Fatalf("reconcile over TLS exited %d\n%s", res.Code, res.Stdout)
	}

	other := stack.NewTLSFiles(t)
	for name, c := range map[string]struct {
		env   []string
		flags []string
		want  string
	}{
		"wrong CA":       {env, []string{"--redis-tls-ca-file", other.CA}, "TLS handshake failed"},
		"no TLS":         {env, []string{"--redis-tls=false"}, "does it expect TLS"},
		"wrong password": {[]string{"REDIS_PASSWORD=nope"}, nil, "rejected the credentials of user \"cutover\""},
	} {
		t.Run(name, func(t *testing.T) {
			res := stack.RunEnv(ctx, t, c.env, append([]string{"backfill"}, withFlags(p.args, c.flags...)...)...)
			if res.Code != 1 || !strings.Contains(res.Stderr, c.want) {
				t.Fatalf("exit %d, want 1 and %q in:\n%s", res.Code, c.want, res.Stderr)
			}
		})
	}
}
