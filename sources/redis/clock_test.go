package redis

import (
	"testing"
	"time"
)

// TestClockCheck: a server clock read every second is compared with the
// local monotonic time that passed between the readings, so a step
// backwards is seen whatever the two clocks' offsets, and an answer that
// merely took long (a slow round trip) is not taken for a step.
func TestClockCheck(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	local := time.Now()
	at := local.Add
	cases := []struct {
		name string
		// readings: server time, local sent, local received (offsets)
		readings [][3]time.Duration
		wantBack []time.Duration
	}{
		{"steady", [][3]time.Duration{{0, 0, time.Millisecond}, {time.Second, time.Second, time.Second + time.Millisecond}}, []time.Duration{0, 0}},
		{"slow round trip", [][3]time.Duration{{0, 0, 300 * time.Millisecond}, {time.Second, 1100 * time.Millisecond, 1500 * time.Millisecond}}, []time.Duration{0, 0}},
		{"stepped back 3s", [][3]time.Duration{{0, 0, time.Millisecond}, {-2 * time.Second, time.Second, time.Second + time.Millisecond}}, []time.Duration{0, 3*time.Second - time.Millisecond}},
		{"stepped forward", [][3]time.Duration{{0, 0, time.Millisecond}, {time.Hour, time.Second, time.Second + time.Millisecond}}, []time.Duration{0, 0}},
		{"stopped for 10ms", [][3]time.Duration{{0, 0, time.Millisecond}, {990 * time.Millisecond, time.Second, time.Second + time.Millisecond}}, []time.Duration{0, 9 * time.Millisecond}},
		{"within tolerance", [][3]time.Duration{{0, 0, time.Millisecond}, {time.Second - 2*time.Millisecond, time.Second + time.Millisecond, time.Second + 2*time.Millisecond}}, []time.Duration{0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var check clockCheck
			for i, r := range c.readings {
				if got := check.observe(base.Add(r[0]), at(r[1]), at(r[2])); got != c.wantBack[i] {
					t.Errorf("reading %d: stepped back by %v, want %v", i, got, c.wantBack[i])
				}
			}
		})
	}
}
