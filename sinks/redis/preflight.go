package redis

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// Preflight checks, read-only, that the target server cl (connected
// with conn) answers and is a master, for `cutover plan`: a replica
// refuses the sink's writes.
func Preflight(ctx context.Context, cl *goredis.Client, conn redisconn.Conn) pipeline.Check {
	const name = "target redis"
	info, err := cl.Info(ctx, "replication").Result()
	if err != nil {
		return pipeline.Failed(name, redisconn.Explain(conn, err))
	}
	if strings.Contains(info, "role:slave") {
		return pipeline.Failed(name, fmt.Errorf("redis %s is a replica: writes go to its master (point --target-redis-addr, sink.redis.addr, at the master)", conn.Addr))
	}
	return pipeline.Passed(name, fmt.Sprintf("%s db %d reachable, a master", conn.Addr, conn.DB))
}
