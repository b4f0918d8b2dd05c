package redis

import "testing"

func TestMergeRanges(t *testing.T) {
	got := mergeRanges([][2]int{{500, 999}, {0, 499}, {5461, 10922}, {1000, 1000}})
	want := [][2]int{{0, 1000}, {5461, 10922}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("mergeRanges = %v, want %v", got, want)
	}
}
