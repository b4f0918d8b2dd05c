package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	redissrc "github.com/cutover/cutover/sources/redis"
	"github.com/cutover/cutover/test/stack"
)

// TestReadInFlightKeepsItsEpoch: a read was stamped with the epoch current
// when its answer arrived, not when it ran. After a failover, a read the
// old master ran before the epoch moved — with the old master's clock,
// ahead of the new one's — came back with the new epoch, and outranked
// every read of the new master until its clock caught up: their changes
// were skipped as older. A read whose epoch moved while it was in flight
// is now read again.
//
// The answer is held back by a proxy; the epoch moves once the server has
// run the read (its EVALSHA count went up) and before the answer arrives.
func TestReadInFlightKeepsItsEpoch(t *testing.T) {
	t.Parallel()
	src := stack.NewRedis(t)
	ctx := testCtx(t, time.Minute)
	must(t, src.Client.Set(ctx, "k", "v", 0).Err())
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, "source", "127.0.0.1:0", src.Addr)
	must(t, server.Collection.Add(proxy, true))
	t.Cleanup(proxy.Stop)

	conn := redisconn.Conn{Addr: proxy.Listen}
	cl, err := redisconn.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	epoch := pipeline.NewEpoch(1)
	reader := redissrc.NewReader(cl, conn, redissrc.ReaderOptions{Name: "t", Epoch: epoch})
	must(t, reader.Prepare(ctx))
	_, err = proxy.Toxics.AddToxicJson(strings.NewReader(`{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":1500}}`))
	must(t, err)

	before := evalshaCalls(t, src)
	type result struct {
		b   pipeline.Batch
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, _, err := reader.Read(ctx, []string{"k"}, pipeline.OriginLive, nil)
		done <- result{b, err}
	}()
	for evalshaCalls(t, src) == before {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := epoch.Advance(func(uint64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	moved, err := src.Client.Time(ctx).Result()
	must(t, err)
	must(t, proxy.Toxics.RemoveToxic(context.Background(), "slow"))

	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	v := res.b.Events[0].Version
	if v.Epoch() == 2 && int64(v.ClockMicros()) < moved.UnixMicro() {
		t.Fatalf("a read the server ran before the epoch moved carries the new epoch (version %s, read at %d µs, epoch moved at %d µs)",
			v, v.ClockMicros(), moved.UnixMicro())
	}
}

// evalshaCalls is how many EVALSHA the server ran.
func evalshaCalls(t *testing.T, r *stack.Redis) int64 { return commandCalls(t, r, "evalsha") }

// keysRead is how many keys the server's scripts read: the read scripts
// ask each key's TYPE once, and a page of keys is one EVALSHA.
func keysRead(t *testing.T, r *stack.Redis) int64 { return commandCalls(t, r, "type") }

// commandCalls is how many times the server ran a command (INFO
// commandstats), scripts' calls included.
func commandCalls(t *testing.T, r *stack.Redis, cmd string) int64 {
	t.Helper()
	info, err := r.Client.Info(context.Background(), "commandstats").Result()
	must(t, err)
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			var n int64
			for _, c := range rest {
				if c < '0' || c > '9' {
					break
				}
				n = n*10 + int64(c-'0')
			}
			return n
		}
	}
	return 0
}
