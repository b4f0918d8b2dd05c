package pipeline

import (
	"strings"
	"testing"
)

// Stream values the apply script of a Redis sink cannot write used to
// pass Validate, and the script failed after it had deleted the key (a
// script is not rolled back): an entry ID 0-0, a group named twice, an
// ID Redis would read otherwise ("01-0"). Validate now refuses what a
// Redis target cannot rebuild exactly, so that such an event is
// dead-lettered with the reason before any write.
func TestStreamValidate(t *testing.T) {
	f := []Field{{Name: []byte("f"), Value: []byte("v")}}
	entries := func(ids ...string) []StreamEntry {
		out := make([]StreamEntry, len(ids))
		for i, id := range ids {
			out[i] = StreamEntry{ID: id, Fields: f}
		}
		return out
	}
	group := func(name, id string, read int64) StreamGroup {
		return StreamGroup{Name: []byte(name), LastDeliveredID: id, EntriesRead: read}
	}
	for _, tc := range []struct {
		name string
		st   Stream
		bad  string // in the error; "" when valid
	}{
		{"whole", Stream{Entries: entries("1-0", "1-1"), LastID: "5-0", MaxDeletedID: "4-0", EntriesAdded: 4, Groups: []StreamGroup{group("a", "1-0", 1), group("b", "0-0", -1)}}, ""},
		{"empty, MKSTREAM", Stream{LastID: "0-0", EntriesAdded: -1}, ""},
		{"a piece", Stream{Entries: entries("7-0"), EntriesAdded: -1}, ""},
		{"largest ID", Stream{Entries: entries("18446744073709551615-18446744073709551615"), LastID: "18446744073709551615-18446744073709551615", EntriesAdded: -1}, ""},
		{"last ID lowered below max deleted", Stream{LastID: "1-0", MaxDeletedID: "5-0", EntriesAdded: 1}, ""},
		{"entry 0-0", Stream{Entries: entries("0-0"), LastID: "1-0", EntriesAdded: -1}, "0-0"},
		{"leading zero", Stream{Entries: entries("01-0"), LastID: "1-0", EntriesAdded: -1}, "not ms-seq"},
		{"sign", Stream{Entries: entries("+1-0"), LastID: "1-0", EntriesAdded: -1}, "not ms-seq"},
		{"no sequence", Stream{Entries: entries("1"), LastID: "1-0", EntriesAdded: -1}, "not ms-seq"},
		{"out of order", Stream{Entries: entries("2-0", "1-0"), LastID: "2-0", EntriesAdded: -1}, "not after"},
		{"repeated", Stream{Entries: entries("2-0", "2-0"), LastID: "2-0", EntriesAdded: -1}, "not after"},
		{"last ID before last entry", Stream{Entries: entries("2-0"), LastID: "1-9", EntriesAdded: -1}, "before its last entry"},
		{"empty without last ID", Stream{EntriesAdded: -1}, "no last ID"},
		{"piece with groups", Stream{Entries: entries("1-0"), EntriesAdded: -1, Groups: []StreamGroup{group("a", "0-0", -1)}}, "without a last ID"},
		{"bad max deleted ID", Stream{LastID: "1-0", MaxDeletedID: "x", EntriesAdded: -1}, "max deleted"},
		{"entries-added below -1", Stream{LastID: "1-0", EntriesAdded: -2}, "entries-added"},
		{"group twice", Stream{LastID: "1-0", EntriesAdded: -1, Groups: []StreamGroup{group("g", "0-0", -1), group("g", "1-0", -1)}}, "twice"},
		{"entries-read below -1", Stream{LastID: "1-0", EntriesAdded: -1, Groups: []StreamGroup{group("g", "0-0", -7)}}, "entries-read"},
		{"group ID", Stream{LastID: "1-0", EntriesAdded: -1, Groups: []StreamGroup{group("g", "$", -1)}}, "not ms-seq"},
		{"entry without fields", Stream{Entries: []StreamEntry{{ID: "1-0"}}, LastID: "1-0", EntriesAdded: -1}, "no field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Value{Type: TypeStream, Stream: &tc.st}
			err := v.Validate()
			switch {
			case tc.bad == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
				t.Errorf("Validate = %v, want an error about %q", err, tc.bad)
			}
		})
	}
}
