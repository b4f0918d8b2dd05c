package faultproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Faults says which requests fail and how. Fractions are in [0, 1].
type Faults struct {
	// Throttle is the fraction of write calls (PutItem, UpdateItem,
	// DeleteItem, BatchWriteItem, TransactWriteItems) answered with
	// ProvisionedThroughputExceededException, without reaching the table.
	Throttle float64
	// DropResponse is the fraction of write calls that reach the table but
	// whose response is dropped: the client sees the connection close.
	DropResponse float64
	// Capacity, when positive, is how many write calls per second the
	// table takes; the rest are throttled, as a provisioned table does.
	Capacity int
	// Unprocessed is the fraction of BatchWriteItem calls (of those not
	// throttled or dropped) of which only the first half of the items is
	// written; the other half comes back in UnprocessedItems, as DynamoDB
	// answers a batch it could only partly take.
	Unprocessed float64
}

// Stats count what the proxy did: requests of any kind, write calls
// (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems),
// and the faults.
type Stats struct {
	Requests, Writes, Throttled, Dropped, Partial int64
}

// Proxy is a running fault proxy.
type Proxy struct {
	URL string

	mu       sync.Mutex
	faults   Faults
	rng      *rand.Rand
	capacity *rate.Limiter

	srv                                           *http.Server
	requests, writes, throttled, dropped, partial atomic.Int64
}

var writeOps = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true}

const throttleBody = `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",` +
	`"message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}`

// Start listens on addr (e.g. "127.0.0.1:0") and forwards to target (the
// DynamoDB endpoint URL).
func Start(addr, target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("fault proxy target %q: %w", target, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{URL: "http://" + l.Addr().String(), rng: rand.New(rand.NewPCG(1, 2))}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10e9}
	go p.srv.Serve(l) //nolint:errcheck // ends with Close
	return p, nil
}

// Set changes the faults from now on.
func (p *Proxy) Set(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
	p.capacity = nil
	if f.Capacity > 0 {
		p.capacity = rate.NewLimiter(rate.Limit(f.Capacity), max(1, f.Capacity/10))
	}
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	return Stats{Requests: p.requests.Load(), Writes: p.writes.Load(), Throttled: p.throttled.Load(), Dropped: p.dropped.Load(), Partial: p.partial.Load()}
}

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }

func (p *Proxy) roll() (throttle, drop, partial bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.capacity != nil && !p.capacity.Allow() {
		return true, false, false
	}
	f := p.faults
	r := p.rng.Float64()
	throttle = r < f.Throttle
	drop = !throttle && r < f.Throttle+f.DropResponse
	partial = !throttle && !drop && p.rng.Float64() < f.Unprocessed
	return throttle, drop, partial
}

func (p *Proxy) handler(rp *httputil.ReverseProxy) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		op := r.Header.Get("X-Amz-Target")
		op = op[strings.LastIndexByte(op, '.')+1:]
		if !writeOps[op] {
			rp.ServeHTTP(w, r)
			return
		}
		p.writes.Add(1)
		throttle, drop, partial := p.roll()
		switch {
		case throttle:
			p.throttled.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.Header().Set("X-Amzn-Errortype", "ProvisionedThroughputExceededException")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, throttleBody)
		case drop:
			// Let the write happen, then lose the answer.
			p.dropped.Add(1)
			rec := &discard{header: http.Header{}}
			rp.ServeHTTP(rec, r)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		case partial && op == "BatchWriteItem":
			p.partial.Add(1)
			p.halfBatch(rp, w, r)
		default:
			rp.ServeHTTP(w, r)
		}
	}
}

// halfBatch forwards the first half of each table's items of a
// BatchWriteItem and answers the rest as UnprocessedItems, merged with
// whatever the table itself left unprocessed.
func (p *Proxy) halfBatch(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
	var req map[string]json.RawMessage
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	var items map[string][]json.RawMessage
	if err == nil {
		err = json.Unmarshal(req["RequestItems"], &items)
	}
	if err != nil {
		http.Error(w, "fault proxy: not a BatchWriteItem body: "+err.Error(), http.StatusBadRequest)
		return
	}
	kept, left := map[string][]json.RawMessage{}, map[string][]json.RawMessage{}
	for table, reqs := range items {
		half := (len(reqs) + 1) / 2
		kept[table] = reqs[:half]
		if half < len(reqs) {
			left[table] = reqs[half:]
		}
	}
	req["RequestItems"], _ = json.Marshal(kept)
	body, _ = json.Marshal(req)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	rec := httptest.NewRecorder()
	rp.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		copyResponse(w, rec)
		return
	}
	var resp map[string]json.RawMessage
	var unprocessed map[string][]json.RawMessage
	if json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
		copyResponse(w, rec)
		return
	}
	if raw, ok := resp["UnprocessedItems"]; ok {
		_ = json.Unmarshal(raw, &unprocessed)
	}
	if unprocessed == nil {
		unprocessed = map[string][]json.RawMessage{}
	}
	for table, reqs := range left {
		unprocessed[table] = append(unprocessed[table], reqs...)
	}
	resp["UnprocessedItems"], _ = json.Marshal(unprocessed)
	out, _ := json.Marshal(resp)
	rec.Body = bytes.NewBuffer(out)
	rec.Header().Del("X-Amz-Crc32") // the body changed; the SDK checks it when present
	rec.Header().Set("Content-Length", strconv.Itoa(len(out)))
	copyResponse(w, rec)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// discard is a ResponseWriter that throws the response away.
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
