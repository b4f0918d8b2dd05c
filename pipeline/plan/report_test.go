package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cutover/cutover/pipeline"
)

// The preflight checks are listed in order; one failure makes the run
// not ready, and the text says so.
func TestReportChecks(t *testing.T) {
	r := Report{Pipeline: "p", Source: "redis a:1 db 0", Topic: "t", Target: "redis b:2 db 0", Table: "users"}
	r.Add(pipeline.Passed("kafka", "k:9092 reachable"))
	if r.Failed() {
		t.Fatal("failed with every check passed")
	}
	r.Add(pipeline.Failed("target redis", errors.New("redis b:2 is a replica")), pipeline.Passed("topic t", "exists"))
	if !r.Failed() {
		t.Fatal("not failed with a failed check")
	}
	r.Ready = !r.Failed()
	var out bytes.Buffer
	r.Print(&out)
	want := `
plan of pipeline "p": redis a:1 db 0 → kafka topic t → redis b:2 db 0

preflight
  ok    kafka: k:9092 reachable
  fail  target redis: redis b:2 is a replica
  ok    topic t: exists

not ready: fix the failed checks above, then run plan again
`
	if out.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", out.String(), want)
	}
	js, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(js); !strings.Contains(s, `{"check":"target redis","status":"fail","detail":"redis b:2 is a replica"}`) || strings.Contains(s, "users") {
		t.Errorf("json: %s", s)
	}
}

func TestReportFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{FormatCount(0), "0"}, {FormatCount(999), "999"}, {FormatCount(1000), "1,000"},
		{FormatCount(1234567), "1,234,567"}, {FormatCount(-12345), "-12,345"},
		{dollars(0.00013875), "$0.0001388"}, {dollars(12.345), "$12.35"},
		{share(0.0893, 0.1, true), "8.93%"}, {share(0.0893, 0.1, false), "8.93% (95%: at most 10%)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
