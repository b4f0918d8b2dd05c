package dynamodb

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// scanRefused is a table whose Scan the user may not run.
type scanRefused struct{}

func (scanRefused) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, errors.New("AccessDeniedException")
}

func TestPreflight(t *testing.T) {
	table := Table{Name: "users", Partition: "pk", PartitionType: "S"}
	for _, c := range []struct {
		name     string
		db       scanOneAPI
		view     string
		readable bool
		want     []string // each step: its name, then "ok" or the start of its error
	}{
		{"stream with new images", &fakeTable{}, "NEW_AND_OLD_IMAGES", true,
			[]string{"source table ok", "source stream ok"}},
		{"stream off", &fakeTable{}, "", true,
			[]string{"source table ok", "source stream DynamoDB Streams is off on table users"}},
		{"keys only", &fakeTable{}, "KEYS_ONLY", true,
			[]string{"source table ok", "source stream the stream of table users has view type KEYS_ONLY"}},
		{"scan refused", scanRefused{}, "NEW_IMAGE", false,
			[]string{"source table ok", "source read scan table users: AccessDeniedException (grant dynamodb:Scan on it)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := table
			tb.StreamView = c.view
			checks, readable := Preflight(context.Background(), c.db, &tb)
			if readable != c.readable {
				t.Errorf("readable = %v, want %v", readable, c.readable)
			}
			var got []string
			for _, ch := range checks {
				s := ch.Name + " ok"
				if ch.Err != nil {
					s = ch.Name + " " + ch.Err.Error()
				}
				got = append(got, s)
			}
			if len(got) != len(c.want) {
				t.Fatalf("steps %q, want %q", got, c.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("step %d = %q, want it to start with %q", i, got[i], c.want[i])
				}
			}
		})
	}
	checks, _ := Preflight(context.Background(), &fakeTable{}, &Table{Name: "t", Partition: "id", PartitionType: "N", Sort: "at", StreamView: "NEW_IMAGE"})
	if got, want := checks[0].Detail, "t: key id (N) at"; got != want {
		t.Errorf("table detail %q, want %q", got, want)
	}
	if got, want := checks[1].Detail, "enabled, view type NEW_IMAGE"; got != want {
		t.Errorf("stream detail %q, want %q", got, want)
	}
}
