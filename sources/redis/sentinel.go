package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
)

// sameMaster runs a backfill's snapshot (which does not follow failovers)
// and fails it if the master failed over meanwhile: a demoted master that
// resynchronised from the new one replaced its data under the SCAN, which
// may then have missed keys. The master's replication ID changes at every
// promotion, so a failover and a failback are caught too.
func (s *Source) sameMaster(ctx context.Context, snapshot func() error) error {
	nodes := s.nodes.running()
	if len(nodes) != 1 {
		return snapshot()
	}
	cl := nodes[0].node.cl
	before, err := replID(ctx, cl)
	if err != nil {
		return fmt.Errorf("read the replication ID of master %s: %w", nodes[0].node.conn.Addr, err)
	}
	if err := snapshot(); err != nil {
		return err
	}
	after, err := replID(ctx, cl)
	if err == nil && after != before {
		err = fmt.Errorf("its replication ID changed from %s to %s", before, after)
	}
	if err == nil {
		var master bool
		if master, err = redisconn.IsMaster(ctx, cl); err == nil && !master {
			err = errors.New("it is a replica now")
		}
	}
	if err != nil {
		return fmt.Errorf("master %q (%s) failed over during the backfill (%w): keys may have been missed; run the backfill again, it scans the new master from the start",
			s.opts.Sentinel.MasterName, nodes[0].node.conn.Addr, err)
	}
	return nil
}

// replID is the server's replication ID (INFO replication master_replid).
func replID(ctx context.Context, cl *goredis.Client) (string, error) {
	id, err := infoField(ctx, cl, "replication", "master_replid")
	if err == nil && id == "" {
		err = errors.New("INFO replication has no master_replid")
	}
	return id, err
}
