package redis

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// The script's compact (for legacy values) must be compactVersion.
func TestLuaCompactIsGos(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	// The function itself, cut from the apply script.
	from := strings.Index(applyLua, "local function compact(v)")
	to := from + strings.Index(applyLua[from:], "\nend\n") + len("\nend\n")
	if from < 0 || to < from {
		t.Fatal("the apply script has no compact function")
	}
	sc := goredis.NewScript(applyLua[from:to] + "return compact(ARGV[1])")
	rng := rand.New(rand.NewPCG(3, 4))
	vs := []pipeline.Version{{}, {0}, make(pipeline.Version, 7), make(pipeline.Version, 8), make(pipeline.Version, 9)}
	for range 500 {
		v := pipeline.ClockVersion(rng.Uint64()>>rng.IntN(65), rng.Uint64()>>rng.IntN(65), rng.IntN(2) == 0)
		for range rng.IntN(3) {
			v = v.Next()
		}
		vs = append(vs, v)
	}
	for _, v := range vs {
		want, err := compactVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sc.Run(ctx, r.Client, nil, []byte(v)).Text()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal([]byte(got), want) {
			t.Fatalf("%s: lua %x go %x", v, got, want)
		}
	}
}
