package kafka

// throttledSink is a sink that can say its target is throttling it: the
// worker then stops fetching from Kafka until it recovers, rather than
// fetch what it cannot write.
type throttledSink interface {
	Throttled() bool
}

// throttled reports whether the sink's target is throttling it now.
func (w *Worker) throttled() bool {
	ts, ok := w.sink.(throttledSink)
	return ok && ts.Throttled()
}

// pauseIfThrottled pauses fetching while the sink's target throttles it,
// and resumes once it recovers. Records already fetched are still applied.
// Only Run's watcher goroutine calls it.
func (w *Worker) pauseIfThrottled() {
	ts, ok := w.sink.(throttledSink)
	if !ok {
		return
	}
	switch throttled := ts.Throttled(); {
	case throttled && !w.paused.Load():
		w.cl.PauseFetchTopics(w.opts.Topic)
		w.paused.Store(true)
		w.pauses.Add(1)
		w.log.Info("the target is throttling writes: fetching from Kafka paused until it recovers")
	case !throttled && w.paused.Load():
		w.cl.ResumeFetchTopics(w.opts.Topic)
		w.paused.Store(false)
		w.log.Info("the target recovered: fetching from Kafka resumed")
	}
}
