package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/internal/retry"
)

// ControlTopic is the topic that carries drain requests to the source of
// the pipeline whose events go to events: "<events>.control", one
// partition.
func ControlTopic(events string) string { return events + ".control" }

// controlRetention is how long drain requests are kept: a request is
// answered by a source that runs when it is sent (or re-sent), never
// replayed, so a short retention is enough.
const controlRetention = "3600000" // 1 hour, in ms

// EnsureControlTopic creates the control topic of the event topic events
// if it is missing: one partition, kept an hour.
func EnsureControlTopic(ctx context.Context, cl *kgo.Client, events string, replicationFactor int16) (TopicState, error) {
	retention := controlRetention
	return EnsureTopic(ctx, cl, TopicSpec{Name: ControlTopic(events), Partitions: 1, ReplicationFactor: replicationFactor,
		Configs: map[string]*string{"retention.ms": &retention}})
}

// DrainRequest asks the source to publish a barrier once everything it
// saw before it read the request is published.
type DrainRequest struct {
	// ID names the drain; the barriers carry it.
	ID string `json:"drain"`
	// Time is when `cutover drain` sent the request (for the logs).
	Time time.Time `json:"time"`
}

func drainRequestRecord(events string, req DrainRequest) *kgo.Record {
	value, _ := json.Marshal(req) // cannot fail
	return &kgo.Record{Topic: ControlTopic(events), Partition: 0, Key: []byte(req.ID), Value: value,
		Headers: []kgo.RecordHeader{header(HeaderContentType, "application/json")}}
}

func parseDrainRequest(r *kgo.Record) (DrainRequest, error) {
	var req DrainRequest
	if err := json.Unmarshal(r.Value, &req); err != nil {
		return req, fmt.Errorf("drain request at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	if req.ID == "" {
		return req, fmt.Errorf("drain request at %s[%d]@%d has no drain ID", r.Topic, r.Partition, r.Offset)
	}
	return req, nil
}

// ControlConsumerOpts are the franz-go options of the client ServeDrains
// reads requests with: the control topic of events, from offset from —
// its end offset when the source starts (ControlEnd). Requests sent
// before are not answered; `cutover drain` sends its request again until
// it is, so a source that starts (or restarts) while a drain waits still
// answers it.
func ControlConsumerOpts(events string, from int64) []kgo.Opt {
	return []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		ControlTopic(events): {0: kgo.NewOffset().At(from)},
	})}
}

// ControlEnd is the end offset of the control topic of events. A topic
// just created (by this source or by a drain) may not be known to every
// broker yet: it is asked again for up to 10 seconds.
func ControlEnd(ctx context.Context, cl *kgo.Client, events string) (int64, error) {
	var end map[int32]int64
	err := retry.For(ctx, 10*time.Second, func() error {
		var err error
		end, err = EndOffsets(ctx, cl, ControlTopic(events))
		if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, kerr.LeaderNotAvailable) {
			return retry.Permanent(err)
		}
		return err
	}, nil, retry.Initial(100*time.Millisecond), retry.Max(time.Minute))
	return end[0], err
}

// DrainSource is a source that can tell when it has handed over
// everything it saw: sources/redis.Source and sources/dynamodb.Source.
type DrainSource interface {
	// Drained returns once every change the source saw before the call
	// is handed to its publisher (so that a barrier published afterwards
	// follows it on its partition). It waits as long as it must (a
	// snapshot or a heal still running); it returns an error when ctx
	// ends or the source cannot tell.
	Drained(ctx context.Context) error
}

// Barrierer publishes drain barriers; *Publisher implements it.
type Barrierer interface {
	Barrier(ctx context.Context, id string) error
}

// ServeDrains answers the drain requests read by cl (made with
// ControlConsumerOpts) until ctx ends: for each, once src.Drained
// returns, pub publishes a barrier with the request's ID to every
// partition. Requests are answered concurrently; one already being
// answered, or answered, is not answered again (`cutover drain` re-sends
// its request until it sees the barriers). A request that could not be
// answered is forgotten, so that its next copy is tried again.
func ServeDrains(ctx context.Context, cl *kgo.Client, pub Barrierer, src DrainSource, log *slog.Logger) {
	s := &drainServer{pub: pub, src: src, log: log, seen: map[string]time.Time{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) {
				log.Warn("reading drain requests failed; retrying", "topic", topic, "partition", partition, "err", err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			req, err := parseDrainRequest(r)
			if err != nil {
				log.Warn("ignoring a drain request that cannot be read", "err", err)
				return
			}
			if !s.claim(req.ID) {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.answer(ctx, req)
			}()
		})
	}
}

type drainServer struct {
	pub Barrierer
	src DrainSource
	log *slog.Logger

	mu   sync.Mutex
	seen map[string]time.Time // drain IDs being answered or answered, and when first seen
}

// seenFor is how long an answered drain's ID is remembered: longer than
// any drain waits (its --timeout), so its re-sent requests are ignored.
const seenFor = 24 * time.Hour

// claim reports whether the request id is new, and marks it seen.
func (s *drainServer) claim(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, at := range s.seen {
		if now.Sub(at) > seenFor {
			delete(s.seen, k)
		}
	}
	if _, ok := s.seen[id]; ok {
		return false
	}
	s.seen[id] = now
	return true
}

func (s *drainServer) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.seen, id)
}

func (s *drainServer) answer(ctx context.Context, req DrainRequest) {
	start := time.Now()
	log := s.log.With("drain", req.ID)
	log.Info("drain requested: publishing a barrier once everything read so far is published")
	if err := s.src.Drained(ctx); err != nil {
		s.forget(req.ID)
		if ctx.Err() == nil {
			log.Warn("drain request not answered; the next copy of it is tried again", "err", err)
		}
		return
	}
	if err := s.pub.Barrier(ctx, req.ID); err != nil {
		s.forget(req.ID)
		if ctx.Err() == nil {
			log.Warn("publishing the drain barrier failed; the next copy of the request is tried again", "err", err)
		}
		return
	}
	log.Info("drain barrier published to every partition", "took", time.Since(start).Round(time.Millisecond))
}
