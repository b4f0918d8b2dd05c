package redis

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// sampleKeys chooses about fraction of all keys: those whose hash,
// salted by this run, falls under the fraction. Reconcile's Scanners
// (reconcile --sample) and the Sampler (plan --sample) both sample with it.
func sampleKeys(fraction float64) func(key string) bool {
	salt := rand.Uint64() //nolint:gosec // a sample, not a secret
	limit := uint64(fraction * math.MaxUint64)
	return func(key string) bool {
		h := fnv.New64a()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], salt)
		_, _ = h.Write(b[:])
		_, _ = h.Write([]byte(key))
		return mix64(h.Sum64()) <= limit
	}
}

// mix64 is MurmurHash3's 64-bit finalizer. FNV-1a's high bits are poorly
// mixed for keys that differ only in their last bytes (user:1, user:2…),
// and the sample compares the whole hash with a limit, so without it a
// sample of a fraction f took far more or fewer keys than f, and more of
// some types than others (a 20% sample of the demo dataset read 23% of
// its keys, half again as many sets as there are).
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb93fe53e4a87
	h ^= h >> 33
	return h
}
