package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// HoldProxy is a TCP proxy between one cutover sink worker and a Redis
// target that can hold the worker's writes: while held, what the worker
// sends stays in the proxy, as if the network stalled. Released later —
// after the worker was frozen and another one took its partitions over —
// those writes reach the target late, and the proxy reads the target's
// answers to them: the apply script answers, for each event of a call,
// "1" for a write it made and "0" for one it refused as older.
type HoldProxy struct {
	Addr string

	ln     net.Listener
	target string

	mu      sync.Mutex
	holding bool
	conns   []*holdConn
	closed  bool
}

type holdConn struct {
	client, server net.Conn
	clientGone     bool   // the worker closed its end while its writes were held
	held           []byte // sent by the worker while held
	heldCmds       int    // EVALSHA commands in held
	expect         int    // answers still to count: those of the last release's calls
	applied        int    // events of the last release's calls answered "1"
	refused        int    // events answered "0"
	other          int    // any other answer to them
	partial        []byte // an answer not yet complete
}

// StartHoldProxy listens on a loopback port and forwards to target.
func StartHoldProxy(target string) (*HoldProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hold proxy: %w", err)
	}
	p := &HoldProxy{Addr: ln.Addr().String(), ln: ln, target: target}
	go p.accept()
	return p, nil
}

func (p *HoldProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		hc := &holdConn{client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns = append(p.conns, hc)
		p.mu.Unlock()
		go p.up(hc)
		go p.down(hc)
	}
}

var evalsha = []byte("\r\nevalsha\r\n")

// up forwards the worker's bytes to the target, or keeps them while held.
func (p *HoldProxy) up(hc *holdConn) {
	defer func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !hc.clientGone {
			hc.server.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := hc.client.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.holding {
				hc.held = append(hc.held, buf[:n]...)
				hc.heldCmds = bytes.Count(bytes.ToLower(hc.held), evalsha)
				p.mu.Unlock()
			} else {
				p.mu.Unlock()
				if _, err := hc.server.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			p.mu.Lock()
			hc.clientGone = len(hc.held) > 0
			p.mu.Unlock()
			return
		}
	}
}

// down forwards the target's answers to the worker and, after a release,
// counts those of the connections that had writes held.
func (p *HoldProxy) down(hc *holdConn) {
	defer hc.client.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := hc.server.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hc.count(buf[:n])
			p.mu.Unlock()
			if _, err := hc.client.Write(buf[:n]); err != nil {
				// The worker is gone (it timed out and reconnected): keep
				// reading, the answers still count.
				_, _ = io.Copy(countingWriter{p, hc}, hc.server)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

type countingWriter struct {
	p  *HoldProxy
	hc *holdConn
}

func (w countingWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.hc.count(b)
	return len(b), nil
}

// count reads the target's answers (RESP2 or RESP3), all of them, to stay
// at a value's start, and tallies those to a release's calls: the first
// expect array or error answers after it (the worker is frozen when its
// writes are released, so nothing it sends later is answered before
// them). The apply script answers each EVALSHA with an array of one
// answer per event, or an error; the answers to other commands (HELLO
// and CLIENT SETINFO of a new connection) are skipped. Answers after
// those are not the late writes': the worker woke up and carries on.
func (hc *holdConn) count(b []byte) {
	hc.partial = append(hc.partial, b...)
	for {
		n, kind, _, ok := respValue(hc.partial)
		if !ok {
			return
		}
		value := hc.partial[:n]
		hc.partial = hc.partial[n:]
		if hc.expect == 0 || kind != '*' && kind != '-' {
			continue
		}
		hc.expect--
		if kind == '-' {
			hc.other++
			continue
		}
		for _, a := range respStrings(value) {
			switch a {
			case "1":
				hc.applied++
			case "0":
				hc.refused++
			default:
				hc.other++
			}
		}
	}
}

// respStrings is the elements of a whole RESP array of strings.
func respStrings(b []byte) []string {
	_, _, line, _ := respValue(b)
	count, _ := strconv.Atoi(line)
	pos := bytes.Index(b, []byte("\r\n")) + 2
	out := make([]string, 0, max(count, 0))
	for range count {
		m, kind, l, ok := respValue(b[pos:])
		if !ok {
			break
		}
		if kind == '$' {
			head := bytes.Index(b[pos:], []byte("\r\n")) + 2
			out = append(out, string(b[pos+head:pos+m-2]))
		} else {
			out = append(out, l)
		}
		pos += m
	}
	return out
}

// respValue parses one whole RESP value at the start of b: its length,
// its type byte and its first line; ok is false while b holds only part
// of it.
func respValue(b []byte) (n int, kind byte, line string, ok bool) {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 1 {
		return 0, 0, "", false
	}
	kind, line, n = b[0], string(b[1:i]), i+2
	count, err := strconv.Atoi(line)
	switch kind {
	case '$', '=', '!': // a blob: its length, then the bytes
		if err != nil || count < 0 {
			return n, kind, line, err == nil
		}
		if len(b) < n+count+2 {
			return 0, 0, "", false
		}
		return n + count + 2, kind, line, true
	case '*', '~', '>', '%', '|': // an aggregate: its elements follow
		if err != nil || count < 0 {
			return n, kind, line, err == nil
		}
		if kind == '%' || kind == '|' {
			count *= 2
		}
		for range count {
			m, _, _, ok := respValue(b[n:])
			if !ok {
				return 0, 0, "", false
			}
			n += m
		}
		if kind == '|' { // an attribute comes before the value it is about
			m, k, l, ok := respValue(b[n:])
			return n + m, k, l, ok
		}
		return n, kind, line, true
	}
	return n, kind, line, true
}

// Hold keeps everything the worker sends from now on.
func (p *HoldProxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
}

// Held is how many EVALSHA commands (writes) are held.
func (p *HoldProxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, hc := range p.conns {
		if len(hc.held) > 0 {
			n += hc.heldCmds
		}
	}
	return n
}

// LateWrites is what the target answered to the writes held and then
// released: applied, refused as older, anything else.
// Orphaned counts the held writes whose worker had closed its connection
// by the release (they still reach the target).
type LateWrites struct {
	Held, Orphaned          int // apply script calls
	Applied, Refused, Other int // their events
}

func (l LateWrites) String() string {
	return fmt.Sprintf("%d apply calls held (%d of a closed connection): %d events applied, %d refused as older, %d other answers",
		l.Held, l.Orphaned, l.Applied, l.Refused, l.Other)
}

// Release sends what was held to the target and stops holding, then
// waits until the target answered every released write (or ctx ends),
// and returns the answers.
func (p *HoldProxy) Release(ctx context.Context) (LateWrites, error) {
	p.mu.Lock()
	var late LateWrites
	var released []*holdConn
	for _, hc := range p.conns {
		if len(hc.held) == 0 {
			continue
		}
		late.Held += hc.heldCmds
		if hc.clientGone {
			late.Orphaned += hc.heldCmds
		}
		// A connection held and released before counts afresh.
		hc.applied, hc.refused, hc.other = 0, 0, 0
		hc.expect = hc.heldCmds
		released = append(released, hc)
	}
	p.holding = false
	p.mu.Unlock()
	for _, hc := range released {
		// Sent in the proxy's lock order: nothing the worker sends after
		// the release can overtake it (the worker is frozen meanwhile).
		p.mu.Lock()
		held := hc.held
		hc.held = nil
		p.mu.Unlock()
		if _, err := hc.server.Write(held); err != nil {
			return late, fmt.Errorf("release the held writes: %w", err)
		}
	}
	for {
		p.mu.Lock()
		late.Applied, late.Refused, late.Other = 0, 0, 0
		waiting := 0
		for _, hc := range released {
			late.Applied += hc.applied
			late.Refused += hc.refused
			late.Other += hc.other
			waiting += hc.expect
		}
		p.mu.Unlock()
		if waiting == 0 {
			return late, nil
		}
		select {
		case <-ctx.Done():
			return late, fmt.Errorf("the target answered %d of %d released writes: %w", late.Held-waiting, late.Held, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops the proxy and its connections.
func (p *HoldProxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.mu.Unlock()
	for _, hc := range conns {
		hc.client.Close()
		hc.server.Close()
	}
	return p.ln.Close()
}
