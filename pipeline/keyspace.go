package pipeline

// How keys are selected and distributed: Redis glob patterns, Redis
// Cluster hash slots, and Kafka partitions. Sources use them to choose
// keys; sinks use them to find the keys a truncate event covers.

// Match reports whether key matches the Redis glob pattern, with the same
// rules as Redis' KEYS and SCAN MATCH: * any run of bytes, ? one byte,
// [abc] [^abc] [a-z] classes, \x escapes x. Matching is on bytes, so
// binary keys work.
func Match(pattern, key string) bool {
	p, k := 0, 0
	// Backtracking point for the last '*': where it is in the pattern and
	// how much of the key it has swallowed.
	star, starK := -1, 0
	for k < len(key) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				star, starK = p, k
				continue
			case '?':
				p++
				k++
				continue
			case '[':
				if end, ok := matchClass(pattern, p, key[k]); ok {
					p = end
					k++
					continue
				}
			case '\\':
				if p+1 < len(pattern) {
					if pattern[p+1] == key[k] {
						p += 2
						k++
						continue
					}
				} else if key[k] == '\\' {
					p++
					k++
					continue
				}
			default:
				if pattern[p] == key[k] {
					p++
					k++
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		starK++
		p, k = star, starK
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches c against the class starting at pattern[start] == '['
// and returns the index after the class. An unterminated class runs to the
// end of the pattern, as in Redis.
func matchClass(pattern string, start int, c byte) (int, bool) {
	p := start + 1
	not := false
	if p < len(pattern) && pattern[p] == '^' {
		not = true
		p++
	}
	matched := false
	for p < len(pattern) && pattern[p] != ']' {
		switch {
		case pattern[p] == '\\' && p+1 < len(pattern):
			p++
			if pattern[p] == c {
				matched = true
			}
			p++
		case p+2 < len(pattern) && pattern[p+1] == '-' && pattern[p+2] != ']':
			lo, hi := pattern[p], pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if c >= lo && c <= hi {
				matched = true
			}
			p += 3
		default:
			if pattern[p] == c {
				matched = true
			}
			p++
		}
	}
	if p < len(pattern) {
		p++ // the closing ']'
	}
	return p, matched != not
}

// KeyFilter selects keys by glob patterns.
type KeyFilter struct {
	// Include: a key must match one of these (all keys when empty).
	Include []string
	// Exclude: a key matching one of these is skipped.
	Exclude []string
}

// Keep reports whether key passes the filter.
func (f KeyFilter) Keep(key string) bool {
	if len(f.Include) > 0 {
		ok := false
		for _, p := range f.Include {
			if Match(p, key) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range f.Exclude {
		if Match(p, key) {
			return false
		}
	}
	return true
}

// ScanMatch is the pattern to hand to SCAN MATCH so the server does the
// filtering: possible only with exactly one include pattern.
func (f KeyFilter) ScanMatch() string {
	if len(f.Include) == 1 {
		return f.Include[0]
	}
	return ""
}

// Murmur2 is the 32-bit murmur2 hash Kafka's default partitioner uses.
func Murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[3])<<24 | uint32(b[2])<<16 | uint32(b[1])<<8 | uint32(b[0])
		b = b[4:]
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// PartitionOf is the partition of n that Kafka's default partitioner (and
// cutover's publisher) sends key to.
func PartitionOf(key []byte, n int32) int32 {
	return int32(Murmur2(key)&0x7fffffff) % n
}

// SlotCount is the number of Redis Cluster hash slots.
const SlotCount = 16384

// RedisSlot is the Redis Cluster hash slot of key: CRC16 of the key, or of
// its hash tag (the part between the first '{' and the next '}', if
// non-empty), modulo 16384.
func RedisSlot(key []byte) int {
	if s := indexByte(key, '{'); s >= 0 {
		if e := indexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	return int(crc16(key) % SlotCount)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021), as Redis Cluster uses.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
