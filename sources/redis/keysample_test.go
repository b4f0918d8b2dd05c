package redis

import (
	"strconv"
	"testing"
)

// TestSampleKeysIsUniform pins a bias of the key sample (reconcile
// --sample, plan --sample): it compared FNV-1a hashes with a limit, and
// FNV-1a's high bits hardly change between keys that differ only in
// their last bytes. A 20% sample of keys named like the demo dataset's
// (type:n) took about 23% of them, and far more of some types than of
// others, so every count scaled from it was off.
func TestSampleKeysIsUniform(t *testing.T) {
	types := []string{"string", "hash", "list", "set", "zset"}
	for run := range 5 {
		keep := sampleKeys(0.2)
		var kept int
		byType := map[string]int{}
		for i := range 50_000 {
			typ := types[i%len(types)]
			if keep(typ + ":" + strconv.Itoa(i)) {
				kept++
				byType[typ]++
			}
		}
		// 10,000 expected; a binomial's standard deviation is ~90.
		if kept < 9_500 || kept > 10_500 {
			t.Errorf("run %d: a 20%% sample of 50,000 keys kept %d", run, kept)
		}
		for typ, n := range byType {
			if n < 1_800 || n > 2_200 {
				t.Errorf("run %d: kept %d of 10,000 %s keys, want about 2,000", run, n, typ)
			}
		}
	}
}
