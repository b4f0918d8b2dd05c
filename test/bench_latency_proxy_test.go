package test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// latencyProxy starts a Toxiproxy on 127.0.0.1 in front of upstream
// (host:port) that delays everything coming back from it by latency ±
// jitter, and returns its endpoint URL and a watch of the write requests
// that pass it.
func latencyProxy(b *testing.B, upstream string, latency, jitter time.Duration) (string, *writeWatch) {
	registerWriteWatch.Do(func() { toxics.Register("cutover_write_watch", new(writeWatch)) })
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, "dynamodb", "127.0.0.1:0", upstream)
	if err := server.Collection.Add(proxy, true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(proxy.Stop)
	toxic := fmt.Sprintf(`{"name":"rtt","type":"latency","stream":"downstream","attributes":{"latency":%d,"jitter":%d}}`,
		latency.Milliseconds(), jitter.Milliseconds())
	if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
		b.Fatal(err)
	}
	w, err := proxy.Toxics.AddToxicJson(strings.NewReader(`{"name":"writes","type":"cutover_write_watch","stream":"upstream"}`))
	if err != nil {
		b.Fatal(err)
	}
	return "http://" + proxy.Listen, w.Toxic.(*writeWatch)
}

var registerWriteWatch sync.Once

// writeTargets mark the requests that write items (the SDK sends HTTP/1.1
// in clear to an http:// endpoint, the operation in X-Amz-Target).
var writeTargets = [][]byte{[]byte("DynamoDB_20120810.PutItem"), []byte("DynamoDB_20120810.UpdateItem"),
	[]byte("DynamoDB_20120810.BatchWriteItem"), []byte("DynamoDB_20120810.TransactWriteItems")}

// writeWatch is a Toxiproxy toxic on the requests' stream: it passes
// everything on unchanged and notes the write requests, when the first and
// the last went by. Toxiproxy makes one per proxy from the registered type;
// AddToxicJson returns it.
type writeWatch struct {
	mu          sync.Mutex
	n           int64
	first, last time.Time
}

// Pipe implements toxics.Toxic.
func (t *writeWatch) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			k := 0
			for _, target := range writeTargets {
				k += bytes.Count(c.Data, target)
			}
			if k > 0 {
				now := time.Now()
				t.mu.Lock()
				if t.n == 0 {
					t.first = now
				}
				t.n += int64(k)
				t.last = now
				t.mu.Unlock()
			}
			stub.Output <- c
		}
	}
}

// reset forgets the requests seen so far.
func (t *writeWatch) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n, t.first, t.last = 0, time.Time{}, time.Time{}
}

// seen is how many write requests went by since the last reset, and when
// the first and the last did.
func (t *writeWatch) seen() (n int64, first, last time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n, t.first, t.last
}
