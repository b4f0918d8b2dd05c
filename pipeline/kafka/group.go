package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commit commits every partition's finished prefix that grew since the
// last commit. A failed commit is tried again with the next one; until
// then a restart applies those records again, which is harmless.
func (w *Worker) commit(ctx context.Context) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	ready := w.inflight.takeReady()
	if len(ready) == 0 {
		return
	}
	recs := make([]*kgo.Record, len(ready))
	for i, t := range ready {
		recs[i] = t.rec
	}
	if err := w.cl.CommitRecords(ctx, recs...); err != nil {
		w.inflight.putBack(ready)
		if ctx.Err() == nil {
			w.log.Warn("committing offsets failed, will be retried with the next commit", "err", err)
		}
		return
	}
	w.progress.advance(recs)
}

// revoked commits what is finished of partitions taken away from this
// worker, and forgets them: their records still being written finish
// without committing (the new owner applies them again, harmlessly).
func (w *Worker) revoked(ctx context.Context, parts map[string][]int32, lost bool) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	recs := w.inflight.drop(parts[w.opts.Topic])
	if lost || len(recs) == 0 {
		return
	}
	if err := w.cl.CommitRecords(ctx, recs...); err != nil {
		w.log.Warn("committing the offsets of revoked partitions failed; their new owner applies those records again", "err", err)
		return
	}
	w.progress.advance(recs)
}

// workers finds the Worker of a client in the group callbacks WorkerOpts
// installs (the client exists before its Worker does).
var workers sync.Map // *kgo.Client → *Worker

func onRevoked(lost bool) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
		if w, ok := workers.Load(cl); ok {
			w.(*Worker).revoked(ctx, parts, lost)
		}
	}
}

// leave takes a static member out of the group when it stops on purpose,
// so its partitions move to other workers now rather than after the
// session timeout. (A dynamic member leaves by itself when its client
// closes; a static one does not, which is what lets a crashed worker
// come back to its partitions.)
func (w *Worker) leave(ctx context.Context) {
	if w.opts.InstanceID == "" {
		return
	}
	// ctx is done (we are stopping); the leave still deserves a moment.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	member, _ := w.cl.GroupMetadata()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = w.opts.Group
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = member
	m.InstanceID = &w.opts.InstanceID
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, w.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
		for _, r := range resp.Members {
			if err == nil {
				err = kerr.ErrorForCode(r.ErrorCode)
			}
		}
	}
	if err != nil {
		w.log.Warn("leaving the consumer group failed; its partitions move once the session times out", "err", err)
	}
}
