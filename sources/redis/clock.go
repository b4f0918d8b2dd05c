package redis

import (
	"context"
	"time"
)

// clockTolerance is how far a server's clock may seem to go back between
// two readings before it counts as stepped: clock rates differ a little
// (NTP slews by up to 0.5 ms a second), and a reading's moment is only
// known to within its round trip, which the check already accounts for.
const clockTolerance = 2 * time.Millisecond

// clockCheck tells, from successive readings of a server's clock (Redis
// TIME), whether the clock stepped backwards.
//
// A reading taken between the local instants sent and received shows
// the server's clock at some moment in that interval. From one reading to
// the next, at least next.sent - prev.received of real time passed, so a
// clock that did not step shows at least that much more (minus
// clockTolerance). It compares local monotonic time with the server's
// wall clock, so it needs neither clock to agree with the other.
type clockCheck struct {
	prevServer   time.Time
	prevReceived time.Time // local, monotonic
	have         bool
}

// observe records a reading; back is how far the clock stepped backwards
// since the previous one (0 when it did not).
func (c *clockCheck) observe(server, sent, received time.Time) (back time.Duration) {
	if c.have {
		minElapsed := sent.Sub(c.prevReceived)
		if shown := server.Sub(c.prevServer); shown < minElapsed-clockTolerance {
			back = minElapsed - shown
		}
	}
	c.prevServer, c.prevReceived, c.have = server, received, true
	return back
}

// watchClock reads the node's clock every ClockEvery while its live
// capture runs. Versions are the server's time: after a step backwards
// (an NTP step, a failover to a machine whose clock is behind) new reads
// would lose against older ones and changes would be skipped as older. On
// a step, a new version epoch starts (so reads from now on win) and the
// node heals (so what was read in between with the stepped clock is read
// again).
func (s *Source) watchClock(ctx context.Context, nr *nodeRun) {
	var check clockCheck
	stepped := false // a step not yet answered with a new epoch
	t := time.NewTicker(s.opts.ClockEvery)
	defer t.Stop()
	for {
		sent := time.Now()
		server, err := nr.node.cl.Time(ctx).Result()
		received := time.Now()
		if err == nil {
			if back := check.observe(server, sent, received); back > 0 {
				s.nodes.clockSteps.Add(1)
				stepped = true
				nr.log.Warn("the server's clock stepped backwards: a new version epoch starts and the node heals", "by", back)
			}
		}
		if stepped {
			if err := s.advanceEpoch(ctx, "a server clock stepped backwards"); err != nil {
				nr.log.Error("starting a new version epoch failed; trying again", "err", err)
			} else {
				stepped = false
				nr.live.RequestHeal("the server's clock stepped backwards: reads since may have lost to older ones")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
