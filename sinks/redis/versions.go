package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
)

// Where a Redis target keeps its versions.
//
// A key's version is a field of a hash, its bucket: Options.VersionBuckets
// buckets per hash slot, named prefix + "b{tag}" and the bucket's number
// (none when there is one per slot), where tag hashes to the slot, so the
// bucket is in the data key's slot and the apply script touches both
// atomically on Redis Cluster. The field is the data key; its value is
//
//	'v' compact version                 a value with no expiry
//	'd' deadline compact version        a tombstone, or a value with an expiry
//
// where deadline is 4 bytes, big-endian Unix seconds: past it, the entry
// protects nothing and is treated as absent, and the apply script drops
// it when it cleans the bucket (see applyScript). A small hash is stored
// by Redis as one packed allocation (a listpack, up to
// hash-max-listpack-entries fields, 128 by default), so a version costs
// its key's name and about 15 bytes, against about 170 for a key of its
// own; at 1,000,000 keys a bucket holds about 61 fields.
//
// Before buckets, each version was a string key of its own, prefix +
// "{tag}" + key (legacy). A target written that way is read through for
// one tombstone retention after this layout first wrote to it: the newer
// of the bucket's entry and the legacy key counts, and each write updates
// both, so that workers of the old layout still running (a rolling
// upgrade) and of the new one see each other's versions. The legacy keys
// then expire on their own.

// compactVersion encodes v for storage, shorter and in the same order.
// A version starts with an 8-byte epoch, mostly small: its leading zero
// bytes are dropped, and one byte 9-z (z of them dropped) says how many,
// so the epoch's length orders before its bytes, as its value does. A
// version shorter than 8 bytes can only be all zeros (a repair's
// Version{}.Next()) and sorts below every full one: it is stored as 0 and
// itself. Others are refused: they have no place in the order.
func compactVersion(v pipeline.Version) ([]byte, error) {
	if len(v) < 8 {
		for _, b := range v {
			if b != 0 {
				return nil, fmt.Errorf("%w: version %s is shorter than the 8-byte epoch every version starts with", pipeline.ErrInvalidEvent, v)
			}
		}
		return append([]byte{0}, v...), nil
	}
	z := 0
	for _, b := range v[:8] {
		if b != 0 {
			break
		}
		z++
	}
	return append([]byte{byte(9 - z)}, v[z:]...), nil
}

// expandVersion is the inverse of compactVersion.
func expandVersion(c []byte) (pipeline.Version, error) {
	if len(c) == 0 {
		return nil, errors.New("empty stored version")
	}
	if c[0] == 0 {
		return pipeline.Version(append([]byte{}, c[1:]...)), nil
	}
	z := 9 - int(c[0])
	if z < 0 {
		return nil, fmt.Errorf("stored version %x has an unknown length byte", c)
	}
	v := make(pipeline.Version, z, z+len(c)-1)
	return append(v, c[1:]...), nil
}

// parseEntry reads a bucket entry: the version it holds, or nil when the
// entry is past its deadline at now.
func parseEntry(e []byte, now time.Time) (pipeline.Version, error) {
	switch {
	case len(e) > 1 && e[0] == 'v':
		return expandVersion(e[1:])
	case len(e) > 5 && e[0] == 'd':
		if int64(binary.BigEndian.Uint32(e[1:5])) <= now.Unix() {
			return nil, nil
		}
		return expandVersion(e[5:])
	default:
		return nil, fmt.Errorf("version entry %x is in no known form", e)
	}
}

var (
	slotTagsOnce sync.Once
	slotTags     [pipeline.SlotCount]string
)

// slotTag is a short string that hashes to key's slot: as a hash tag, it
// puts a version key or bucket in the data key's slot whatever braces the
// data key itself contains.
func slotTag(key []byte) string {
	slotTagsOnce.Do(func() {
		found := 0
		for i := uint64(0); found < pipeline.SlotCount; i++ {
			tag := strconv.FormatUint(i, 36)
			slot := pipeline.RedisSlot([]byte(tag))
			if slotTags[slot] == "" {
				slotTags[slot] = tag
				found++
			}
		}
	})
	return slotTags[pipeline.RedisSlot(key)]
}

// bucketKey is the hash holding key's version: prefix + "b{tag}", and
// with more than one bucket per slot, the number of key's (FNV-1a of the
// key). A legacy key always has '{' right after the prefix, so no bucket
// name is ever a legacy key's.
func bucketKey(prefix string, key []byte, buckets int) string {
	b := prefix + "b{" + slotTag(key) + "}"
	if buckets <= 1 {
		return b
	}
	h := fnv.New32a()
	_, _ = h.Write(key) // never fails
	return b + strconv.FormatUint(uint64(h.Sum32()%uint32(buckets)), 10)
}

// bucketKey is the bucket of key on this sink's target.
func (s *Sink) bucketKey(key []byte) string {
	return bucketKey(s.opts.VersionPrefix, key, s.opts.VersionBuckets)
}

// legacyKey is the string key that held key's version before buckets:
// prefix + "{tag}" + key.
func legacyKey(prefix string, key []byte) string {
	tag := slotTag(key)
	var b strings.Builder
	b.Grow(len(prefix) + len(tag) + 2 + len(key))
	b.WriteString(prefix)
	b.WriteByte('{')
	b.WriteString(tag)
	b.WriteByte('}')
	b.Write(key)
	return b.String()
}

// layoutKey records, on the target, that its versions are in buckets, how
// many per slot, and until when legacy version keys may still be there:
// "buckets n=1 legacy-until=1767225600".
func (s *Sink) layoutKey() string { return s.opts.VersionPrefix + "layout" }

// prepareLayout reads how the target keeps versions: the count of
// buckets per slot, and whether the apply script must look for legacy
// version keys. A target that is empty when cutover first writes to it
// has none. One that held keys may have them (a pipeline of an earlier
// cutover wrote it): they are looked for until they have all expired, one
// tombstone retention later. The answer is kept on the target, so that
// every worker and every restart agrees; a target that has none yet gets
// it with the sink's first write (recordLayout), not here: reconcile and
// status read a target through a sink and must not write to it.
func (s *Sink) prepareLayout(ctx context.Context) error {
	got, err := s.cl.Get(ctx, s.layoutKey()).Result()
	if errors.Is(err, goredis.Nil) {
		value := "buckets n=" + strconv.Itoa(max(s.askedBuckets, 1))
		nonEmpty, err := s.holdsKeys(ctx)
		if err != nil {
			return err
		}
		if nonEmpty {
			value += " legacy-until=" + strconv.FormatInt(time.Now().Add(s.opts.TombstoneRetention).Unix(), 10)
		}
		s.layoutMu.Lock()
		s.pendingLayout = value
		s.layoutMu.Unlock()
		return s.useLayout(value)
	}
	if err != nil {
		return fmt.Errorf("redis sink %s: read the version layout in %s: %w", s.opts.Addr, s.layoutKey(), err)
	}
	return s.useLayout(got)
}

// recordLayout writes the layout prepareLayout chose, before the sink's
// first write, unless another worker recorded one first: then that one
// is used.
func (s *Sink) recordLayout(ctx context.Context) error {
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	if s.pendingLayout == "" {
		return nil
	}
	var got string
	err := retry.Forever(ctx, func() error {
		err := s.cl.SetNX(ctx, s.layoutKey(), s.pendingLayout, 0).Err()
		if err == nil {
			got, err = s.cl.Get(ctx, s.layoutKey()).Result()
		}
		if err != nil && (!isTransient(err) || ctx.Err() != nil) {
			return retry.Permanent(err)
		}
		return err
	}, func(err error, wait time.Duration) {
		s.retries.Add(1)
		s.log.Warn("redis sink: recording the version layout failed, retrying", "addr", s.opts.Addr, "err", err, "retry_in", wait)
	}, retry.Initial(50*time.Millisecond), retry.Max(5*time.Second))
	if err != nil {
		return fmt.Errorf("redis sink %s: record the version layout in %s: %w", s.opts.Addr, s.layoutKey(), err)
	}
	if got != s.pendingLayout {
		if err := s.useLayout(got); err != nil {
			return err
		}
	}
	s.pendingLayout = ""
	return nil
}

// useLayout takes a layout record's settings.
func (s *Sink) useLayout(got string) error {
	fields := strings.Fields(got)
	if len(fields) == 0 || fields[0] != "buckets" {
		return fmt.Errorf("redis sink %s: %s says %q, a version layout this cutover does not know: was the target written by a newer cutover? Upgrade, or give this pipeline its own prefix", s.opts.Addr, s.layoutKey(), got)
	}
	legacyUntil := time.Time{}
	recorded := 1
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("redis sink %s: %s says %q: %w", s.opts.Addr, s.layoutKey(), got, err)
		}
		switch k {
		case "n":
			recorded = int(x)
		case "legacy-until":
			legacyUntil = time.Unix(x, 0)
		}
	}
	if s.askedBuckets != 0 && s.askedBuckets != recorded {
		return fmt.Errorf("redis sink %s: the target keeps its versions in %d buckets per hash slot (%s), and this pipeline asks for %d: a target's count is fixed once written; set sink.redis.version_buckets to %d or 0 (--target-redis-version-buckets)",
			s.opts.Addr, recorded, s.layoutKey(), s.askedBuckets, recorded)
	}
	s.legacyUntil = legacyUntil
	s.opts.VersionBuckets = recorded
	return nil
}

// legacyOn reports whether legacy version keys may still be on the
// target.
func (s *Sink) legacyOn() bool { return time.Now().Before(s.legacyUntil) }

// holdsKeys reports whether any node of the target holds a key.
func (s *Sink) holdsKeys(ctx context.Context) (bool, error) {
	var mu sync.Mutex
	found := false
	err := s.eachNode(ctx, func(ctx context.Context, node *goredis.Client) error {
		n, err := node.DBSize(ctx).Result()
		if err != nil {
			return fmt.Errorf("redis sink %s: DBSIZE: %w", node.Options().Addr, err)
		}
		mu.Lock()
		found = found || n > 0
		mu.Unlock()
		return nil
	})
	return found, err
}

// versionsOn reads the versions held for keys through c: nil for a key
// with none (or one past its deadline).
func (s *Sink) versionsOn(ctx context.Context, c goredis.Cmdable, keys []string) ([]pipeline.Version, error) {
	out := make([]pipeline.Version, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	legacyOn := s.legacyOn()
	entries := make([]*goredis.StringCmd, len(keys))
	legacy := make([]*goredis.StringCmd, len(keys))
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			entries[i] = p.HGet(ctx, s.bucketKey([]byte(k)), k)
			if legacyOn {
				legacy[i] = p.Get(ctx, legacyKey(s.opts.VersionPrefix, []byte(k)))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis sink %s: read versions: %w", s.opts.Addr, err)
	}
	now := time.Now()
	for i, k := range keys {
		if e, err := entries[i].Bytes(); err == nil {
			if out[i], err = parseEntry(e, now); err != nil {
				return nil, fmt.Errorf("redis sink %s: version of key %q: %w", s.opts.Addr, k, err)
			}
		}
		// While workers of the old layout may run, the newer of the two
		// counts, as in the apply script.
		if legacy[i] != nil {
			if v, err := legacy[i].Bytes(); err == nil && pipeline.Version(v).Newer(out[i]) {
				out[i] = v
			}
		}
	}
	return out, nil
}

// Versions returns the version the sink holds for each target key name
// (a tombstone's included); keys it holds none for are absent.
func (s *Sink) Versions(ctx context.Context, names []string) (map[string]pipeline.Version, error) {
	vs, err := s.versionsOn(ctx, s.cl, names)
	if err != nil {
		return nil, err
	}
	out := make(map[string]pipeline.Version, len(names))
	for i, n := range names {
		if vs[i] != nil {
			out[n] = vs[i]
		}
	}
	return out, nil
}

// IsVersionKey reports whether a key is the sink's own: a version bucket,
// a legacy version key, or the layout record.
func (s *Sink) IsVersionKey(key string) bool { return strings.HasPrefix(key, s.opts.VersionPrefix) }
