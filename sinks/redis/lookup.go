package redis

import (
	"context"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/reconcile"
)

// KeyReader reads Redis keys whole, as the Redis source reads them
// (sources/redis.Reader): an upsert for each key that holds a value, a
// reject for each it could not read, nothing or a delete for one that is
// absent.
type KeyReader interface {
	ReadKeys(ctx context.Context, keys []string) (pipeline.Batch, error)
}

// Target is the sink as reconcile sees it: what it holds is read back
// through a KeyReader (a tombstone is an absent data key), and the
// versions from its version buckets. Keys are event keys: with a DynamoDB
// source, item keys, looked up under the Redis keys they render to.
type Target struct {
	*Sink
	reader KeyReader
}

var (
	_ reconcile.Target    = (*Target)(nil)
	_ reconcile.Versioner = (*Target)(nil)
)

// NewTarget reads s's keys back through r.
func NewTarget(s *Sink, r KeyReader) *Target {
	return &Target{Sink: s, reader: r}
}

// Lookup implements reconcile.Target.
func (t *Target) Lookup(ctx context.Context, keys [][]byte) (map[string]reconcile.Found, error) {
	names, byName := t.targetNames(keys)
	b, err := t.reader.ReadKeys(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make(map[string]reconcile.Found, len(keys))
	for _, k := range byName {
		out[k] = reconcile.Found{}
	}
	for _, e := range b.Events {
		if e.Op == pipeline.OpUpsert {
			out[byName[string(e.Key)]] = reconcile.Found{Exists: true, Value: e.Value, ExpireAt: e.ExpireAt}
		}
	}
	for _, rej := range b.Rejects {
		out[byName[string(rej.Key)]] = reconcile.Found{Exists: true, Err: rej.Err}
	}
	return out, nil
}

// targetNames maps event keys to the Redis keys they are written under,
// and back (Redis key → event key). Keys the target cannot address are
// left out.
func (t *Target) targetNames(keys [][]byte) ([]string, map[string]string) {
	names := make([]string, 0, len(keys))
	byName := make(map[string]string, len(keys))
	for _, k := range keys {
		if name, err := t.TargetKey(k); err == nil {
			names = append(names, name)
			byName[name] = string(k)
		}
	}
	return names, byName
}

// KeyVersions implements reconcile.Versioner: the versions the sink holds
// for event keys (Lookup leaves them out; only re-checked keys need them).
func (t *Target) KeyVersions(ctx context.Context, keys [][]byte) (map[string]pipeline.Version, error) {
	names, byName := t.targetNames(keys)
	versions, err := t.Versions(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make(map[string]pipeline.Version, len(versions))
	for name, v := range versions {
		out[byName[name]] = v
	}
	return out, nil
}
