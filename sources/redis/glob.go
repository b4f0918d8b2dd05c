package redis

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

// Filter selects keys by glob patterns.
type Filter struct {
	// Include: a key must match one of these (all keys when empty).
	Include []string
	// Exclude: a key matching one of these is skipped.
	Exclude []string
}

// Keep reports whether key passes the filter.
func (f Filter) Keep(key string) bool {
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

// scanMatch is the pattern to hand to SCAN MATCH so the server does the
// filtering: possible only with exactly one include pattern.
func (f Filter) scanMatch() string {
	if len(f.Include) == 1 {
		return f.Include[0]
	}
	return ""
}
