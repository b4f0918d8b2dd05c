package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// applyJobs applies a batch of jobs, dead-letters what cannot be decoded
// or applied, and marks them finished. An error means some were not
// applied: they stay unfinished and are never committed.
func (w *Worker) applyJobs(ctx context.Context, jobs []job) error {
	start := time.Now()
	events := make([]pipeline.Event, 0, len(jobs))
	from := make([]*kgo.Record, 0, len(jobs)) // from[i] is the record of events[i]
	var dead []*kgo.Record
	var decodeErrors int64
	for _, j := range jobs {
		r := j.t.rec
		if j.decodeErr != nil {
			w.log.Warn("record cannot be decoded, sent to the dead-letter topic",
				"partition", r.Partition, "offset", r.Offset, "key", logKey(r.Key), "err", logText(j.decodeErr))
			dead = append(dead, w.deadLetter(r, ClassDecode, j.decodeErr, start))
			decodeErrors++
			continue
		}
		events = append(events, j.event)
		from = append(from, r)
	}

	var results []pipeline.Result
	if len(events) > 0 {
		var err error
		if results, err = w.sink.Apply(ctx, events); err != nil {
			return fmt.Errorf("apply batch of %d events: %w", len(events), err)
		}
		w.batches.Add(1)
		if len(results) != len(events) {
			return fmt.Errorf("sink returned %d results for %d events (a bug in the sink)", len(results), len(events))
		}
	}
	var applied, skipped, rejected int64
	now := time.Now()
	for i, res := range results {
		switch res.Outcome {
		case pipeline.Applied:
			applied++
			w.appliedByOp.add(events[i].Op, 1)
			if w.opts.ObserveLag != nil && !events[i].Source.Time.IsZero() {
				w.opts.ObserveLag(now.Sub(events[i].Source.Time))
			}
		case pipeline.SkippedOlder:
			skipped++
			w.skippedByOp.add(events[i].Op, 1)
		case pipeline.Rejected:
			rejected++
			if res.Err == nil {
				res.Err = fmt.Errorf("rejected by the sink without a reason (a bug in the sink)")
			}
			class := ClassTargetRejected
			if errors.Is(res.Err, pipeline.ErrUnmappable) {
				class = ClassUnmappable
			}
			r := from[i]
			w.log.Warn("event rejected by the target, sent to the dead-letter topic",
				"partition", r.Partition, "offset", r.Offset, "key", logKey(r.Key), "class", class, "err", logText(res.Err))
			dead = append(dead, w.deadLetter(r, class, res.Err, start))
		default:
			return fmt.Errorf("sink returned outcome %v for key %q (a bug in the sink)", res.Outcome, events[i].Key)
		}
	}

	if len(dead) > 0 {
		if err := w.produceDeadLetters(ctx, dead); err != nil {
			return fmt.Errorf("write %d records to dead-letter topic %s: %w (none of them was committed)",
				len(dead), w.opts.DeadLetterTopic, err)
		}
	}
	done := make([]*tracked, len(jobs))
	for i, j := range jobs {
		done[i] = j.t
	}
	w.inflight.finish(done...)
	w.applied.Add(applied)
	w.skipped.Add(skipped)
	w.rejected.Add(rejected)
	w.decodeErrors.Add(decodeErrors)
	w.deadLettered.Add(int64(len(dead)))
	return nil
}

// deadLetter makes the dead-letter record of r, small enough for the
// dead-letter topic: when r with the error headers would be larger than
// MaxDeadLetterBytes, the value is left out (and logged), and the key is
// cut if even that is not enough.
func (w *Worker) deadLetter(r *kgo.Record, class string, err error, now time.Time) *kgo.Record {
	d, shrunk := fitDeadLetter(sinkDeadLetter(w.opts.DeadLetterTopic, r, class, err, now), w.opts.MaxDeadLetterBytes)
	if shrunk {
		w.log.Warn("dead letter too large for the dead-letter topic: its value was left out; the original record stays in its topic until retention removes it",
			"partition", r.Partition, "offset", r.Offset, "key", logKey(r.Key), "value_bytes", len(r.Value), "limit", w.opts.MaxDeadLetterBytes)
	}
	return d
}

// produceDeadLetters writes the dead letters of a batch. A dead letter the
// topic refuses as too large (its max.message.bytes is below
// MaxDeadLetterBytes) is written again on its own, and if refused again,
// without its value and with its key and texts cut: one bad record must
// not stop the worker. Any other failure is returned.
func (w *Worker) produceDeadLetters(ctx context.Context, dead []*kgo.Record) error {
	w.deadMu.Lock()
	defer w.deadMu.Unlock()
	for _, res := range w.cl.ProduceSync(ctx, dead...) {
		if res.Err == nil {
			continue
		}
		if !isTooLarge(res.Err) {
			return res.Err
		}
		// Refused with others in one batch, or alone.
		err := w.cl.ProduceSync(ctx, res.Record).FirstErr()
		if err == nil {
			continue
		}
		if !isTooLarge(err) {
			return err
		}
		small := minimalDeadLetter(res.Record, err)
		if err := w.cl.ProduceSync(ctx, small).FirstErr(); err != nil {
			return fmt.Errorf("%w (the topic refuses even a %d-byte dead letter: raise its max.message.bytes)", err, recordBytes(small))
		}
		w.log.Warn("the dead-letter topic refused a dead letter as too large: written without its value (raise the dead-letter topic's max.message.bytes to keep whole dead letters)",
			"key", logKey(res.Record.Key), "bytes", recordBytes(res.Record), "err", err)
	}
	return nil
}

// isTooLarge reports whether Kafka (or franz-go, before sending) refused a
// record or batch for its size.
func isTooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}
