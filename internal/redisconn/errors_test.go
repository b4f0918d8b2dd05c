package redisconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// reply is an error reply of the server, as go-redis returns one.
type reply string

func (e reply) Error() string { return string(e) }
func (reply) RedisError()     {}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		// The caller's context ended: the server said nothing. The source
		// stops; the sink must not take it for a refusal of the event.
		{"cancelled", context.Canceled, Stopped},
		{"deadline", fmt.Errorf("read keys: %w", context.DeadlineExceeded), Stopped},

		// Not a reply of the server: the connection.
		{"eof", io.EOF, Transient},
		{"unexpected eof", io.ErrUnexpectedEOF, Transient},
		{"refused connection", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, Transient},
		{"plain error", errors.New("the version epoch moved on"), Transient},

		// The server may answer differently soon.
		{"oom", reply("OOM command not allowed when used memory > 'maxmemory'."), Transient},
		{"loading", reply("LOADING Redis is loading the dataset in memory"), Transient},
		{"busy script", reply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT."), Transient},
		{"readonly replica", reply("READONLY You can't write against a read only replica."), Transient},
		{"tryagain", reply("TRYAGAIN Multiple keys request during rehashing of slot"), Transient},
		{"clusterdown", reply("CLUSTERDOWN The cluster is down"), Transient},
		{"masterdown", reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), Transient},
		{"moved", reply("MOVED 3999 127.0.0.1:6381"), Transient},
		{"ask", reply("ASK 3999 127.0.0.1:6381"), Transient},
		{"noreplicas", reply("NOREPLICAS Not enough good replicas to write."), Transient},
		{"wrapped code", fmt.Errorf("scan 127.0.0.1:6379: %w", reply("LOADING Redis is loading the dataset in memory")), Transient},
		{"code inside a script's error", reply("ERR Error running script: @user_script:1: OOM command not allowed"), Transient},

		// The user, not the value: the ACL or the configuration must change.
		{"wrongpass", reply("WRONGPASS invalid username-password pair or user is disabled."), Denied},
		{"noauth", reply("NOAUTH Authentication required."), Denied},
		{"noperm command", reply("NOPERM User reader has no permissions to run the 'time' command"), Denied},
		{"noperm key", reply("NOPERM No permissions to access a key"), Denied},
		{"wrapped noperm", fmt.Errorf("load read scripts: %w", reply("NOPERM User reader has no permissions to run the 'script|load' command")), Denied},
		{"script may not call", reply("ERR The user executing the script can't run this command or subcommand script: 5d3b, on @user_script:1."), Denied},
		{"script may not call, as text", errors.New("ERR The user executing the script can't run this command or subcommand script: 1f0c, on @user_script:1."), Denied},
		{"noperm, as text", errors.New("NOPERM this user has no permissions to run the 'evalsha' command"), Denied},
		{"unknown command", reply("ERR unknown command 'MEMORY', with args beginning with: "), Denied},
		{"db index", reply("ERR DB index is out of range"), Denied},
		{"invalid db index", reply("ERR invalid DB index"), Denied},

		// This command on this value fails the same way again.
		{"wrongtype", reply("WRONGTYPE Operation against a key holding the wrong kind of value"), Refused},
		{"busykey is not busy", reply("BUSYKEY Target key name already exists."), Refused},
		{"busygroup is not busy", reply("BUSYGROUP Consumer Group name already exists"), Refused},
		{"wrongtype, as text", errors.New("WRONGTYPE Operation against a key holding the wrong kind of value"), Refused},

		// A reply the classifier does not know.
		{"other error reply", reply("ERR value is not an integer or out of range"), Unknown},
		{"nil reply", goredis.Nil, Unknown},
		{"nil", nil, Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
