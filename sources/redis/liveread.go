package redis

import (
	"context"
	"errors"
	"fmt"

	"github.com/cutover/cutover/pipeline"
)

// readLoop reads changed keys and publishes their state.
func (l *Live) readLoop(ctx context.Context) error {
	for {
		// Taken under the read lock, so that barrier, once every key is
		// taken, waits for the read of the last ones too.
		l.inflight.RLock()
		keys := l.dirty.take(l.opts.BatchSize)
		if len(keys) == 0 {
			l.inflight.RUnlock()
			select {
			case <-ctx.Done():
				return nil
			case <-l.dirty.wake:
			}
			continue
		}
		unread, err := l.readAndPublish(ctx, keys, pipeline.OriginLive)
		// A heal is asked for before the read leaves the lock: a drain's
		// barrier, once it has the lock, counts it.
		var pe *publishError
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &pe):
			l.inflight.RUnlock()
			return err
		case err != nil:
			// A change we failed to read is a change we may have missed.
			l.RequestHeal("reading changed keys failed: " + err.Error())
		case unread.elsewhere > 0:
			// Dead-lettered keys need no heal: a heal could not read them
			// either. Keys served elsewhere are read by the master that
			// takes their slot over, after the heal the move brings.
			l.RequestHeal(fmt.Sprintf("%d changed keys are in cluster slots moving to another master", unread.elsewhere))
		}
		l.inflight.RUnlock()
	}
}

// barrier returns once every read of changed keys in flight when it was
// called is published (a key taken from the dirty set is in flight). A sweep calls it before its truncate: a read made
// before the sweep's start and published after it could bring back a key
// the sweep is about to be told is gone (deleted during the gap, and so
// absent from the target, where no tombstone would stop it).
func (l *Live) barrier() {
	l.inflight.Lock()
	defer l.inflight.Unlock()
}

// unreadKeys counts the keys of a read that are neither events nor
// known to be gone.
type unreadKeys struct {
	// elsewhere: another master serves them now (a slot migrating).
	elsewhere int
	// forbidden: the user may not read them (ACL); dead-lettered.
	forbidden int
	// refused names some of the forbidden keys (at most maxRefused).
	refused []string
}

// maxRefused bounds the refused keys a heal keeps to look at again.
const maxRefused = 1000

func (u unreadKeys) total() int { return u.elsewhere + u.forbidden }

// readAndPublish reads keys and publishes their events and rejects, and
// says which keys it could not read. An error is either a *publishError
// (publishing failed: live capture must stop) or a read failure (the keys
// were not read).
func (l *Live) readAndPublish(ctx context.Context, keys []string, origin pipeline.Origin) (unread unreadKeys, err error) {
	b, info, err := l.reader.Read(ctx, keys, origin, nil)
	if err != nil {
		return unread, err
	}
	unread.elsewhere = len(info.Elsewhere)
	l.elsewhereReads.Add(int64(len(info.Elsewhere)))
	for _, r := range b.Rejects {
		if r.Class == RejectUnreadable {
			unread.forbidden++
			if len(unread.refused) < maxRefused {
				unread.refused = append(unread.refused, string(r.Key))
			}
			l.unreadable.add(string(r.Key))
		}
	}
	if len(info.Elsewhere) > 0 && l.opts.Elsewhere != nil {
		l.opts.Elsewhere()
	}
	for i := range b.Events {
		if b.Events[i].Op == pipeline.OpDelete {
			l.deletes.Add(1)
		}
	}
	l.events.Add(int64(len(b.Events)))
	l.rejected.Add(int64(len(b.Rejects)))
	if err := l.pub.Publish(ctx, b, nil); err != nil {
		return unread, &publishError{err}
	}
	for _, big := range info.Big {
		var pieceErr error
		err := l.reader.Stream(ctx, big, origin, nil, func(e pipeline.Event) error {
			l.events.Add(1)
			if err := l.pub.Publish(ctx, pipeline.Batch{Events: []pipeline.Event{e}}, nil); err != nil {
				pieceErr = &publishError{err}
				return pieceErr
			}
			return nil
		})
		var rej *RejectedKeyError
		switch {
		case err == nil:
		case pieceErr != nil:
			return unread, pieceErr
		case errors.As(err, &rej):
			l.rejected.Add(1)
			if err := l.pub.Publish(ctx, pipeline.Batch{Rejects: []pipeline.Reject{rej.Reject}}, nil); err != nil {
				return unread, &publishError{err}
			}
		default:
			return unread, err
		}
	}
	return unread, nil
}

// publishError is a failure to hand events to Kafka: unlike a Redis error,
// waiting does not fix it, so it stops live capture.
type publishError struct{ err error }

func (e *publishError) Error() string { return "live capture: publish: " + e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }
