package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// RouteLibraryLogs sends go-redis's own log lines (failed dials, pool and Sentinel events)
// to logger as warnings, so that they come out in the gateway's log format instead of as
// raw lines on stderr. go-redis keeps one logger for the whole process: the last call wins.
func RouteLibraryLogs(logger *slog.Logger) {
	goredis.SetLogger(libraryLog{logger})
}

type libraryLog struct{ logger *slog.Logger }

func (l libraryLog) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	l.logger.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}
