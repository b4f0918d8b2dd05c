package redisconn

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis' own messages (failed dials and the like) to
// log, at debug level, instead of stderr in another format. go-redis has
// one logger per process.
func SetLogger(log *slog.Logger) { goredis.SetLogger(logger{log}) }

type logger struct{ log *slog.Logger }

func (l logger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...))
}
