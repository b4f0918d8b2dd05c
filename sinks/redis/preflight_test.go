package redis

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/test/stack"
)

func TestPreflight(t *testing.T) {
	ctx := context.Background()
	master := stack.NewRedis(t)
	if c := Preflight(ctx, master.Client, redisconn.Conn{Addr: master.Addr}); c.Err != nil || c.Detail != master.Addr+" db 0 reachable, a master" {
		t.Errorf("master: %+v", c)
	}
	host, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		t.Fatal(err)
	}
	replica := stack.NewRedis(t, "--replicaof", host, port)
	c := Preflight(ctx, replica.Client, redisconn.Conn{Addr: replica.Addr})
	if want := fmt.Sprintf("redis %s is a replica", replica.Addr); c.Err == nil || !strings.HasPrefix(c.Err.Error(), want) {
		t.Errorf("replica: %+v, want an error that starts with %q", c, want)
	}
	if c.Name != "target redis" {
		t.Errorf("the step is named %q", c.Name)
	}
}
