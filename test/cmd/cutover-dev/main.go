package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/faultproxy"
)

func main() {
	root := &cobra.Command{Use: "cutover-dev", Short: "Helpers for cutover's demo, tests and benchmarks", SilenceUsage: true}
	root.AddCommand(newSeedCmd(), newFaultProxyCmd())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		stop()
		os.Exit(1) //nolint:gocritic // stop ran above
	}
}

func newFaultProxyCmd() *cobra.Command {
	var listen, target string
	var f faultproxy.Faults
	cmd := &cobra.Command{
		Use:   "dynamodb-fault-proxy",
		Short: "Proxy DynamoDB (Local) and inject throttling and lost responses into writes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := faultproxy.Start(listen, target)
			if err != nil {
				return err
			}
			defer p.Close()
			p.Set(f)
			fmt.Fprintf(cmd.OutOrStdout(), "proxying %s on %s: %.0f%% of writes throttled, %.0f%% of responses dropped\n",
				target, p.URL, 100*f.Throttle, 100*f.DropResponse)
			<-cmd.Context().Done()
			st := p.Stats()
			fmt.Fprintf(cmd.OutOrStdout(), "%d requests, %d throttled, %d responses dropped\n", st.Requests, st.Throttled, st.Dropped)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&listen, "listen", "127.0.0.1:18001", "address to listen on")
	fs.StringVar(&target, "target", "http://127.0.0.1:18000", "DynamoDB endpoint to forward to")
	fs.Float64Var(&f.Throttle, "throttle", 0.3, "fraction of writes answered with ProvisionedThroughputExceededException")
	fs.Float64Var(&f.DropResponse, "drop-response", 0, "fraction of writes that reach the table but lose their response")
	return cmd
}

func newSeedCmd() *cobra.Command {
	var addr string
	var db int
	var spec datagen.Spec
	var flush bool
	cmd := &cobra.Command{
		Use:   "seed-redis",
		Short: "Write a seeded sample dataset of every Redis type into a database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn := redisconn.Conn{Addr: addr, DB: db}
			cl, err := redisconn.Connect(cmd.Context(), conn)
			if err != nil {
				return err
			}
			defer cl.Close()
			if flush {
				if err := cl.FlushDB(cmd.Context()).Err(); err != nil {
					return redisconn.Explain(conn, err)
				}
			}
			sum, err := datagen.Seed(cmd.Context(), cl, spec)
			if err != nil {
				return err
			}
			types := make([]string, 0, len(sum.ByType))
			for t := range sum.ByType {
				types = append(types, t)
			}
			sort.Strings(types)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %d keys to redis %s db %d:", spec.Keys, addr, db)
			for _, t := range types {
				fmt.Fprintf(out, " %d %s,", sum.ByType[t], t)
			}
			fmt.Fprintf(out, " %d with a TTL, %d with binary keys\n", sum.WithTTL, sum.Binary)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&addr, "redis-addr", "127.0.0.1:6379", "Redis host:port")
	fs.IntVar(&db, "redis-db", 0, "logical database")
	fs.IntVar(&spec.Keys, "keys", 10_000, "number of keys")
	fs.Uint64Var(&spec.Seed, "seed", 1, "random seed; the same seed writes the same data")
	fs.StringVar(&spec.Prefix, "prefix", "", "prefix of every key")
	fs.Float64Var(&spec.TTLFraction, "ttl-fraction", 0.1, "fraction of keys given a TTL of one to two hours")
	fs.Float64Var(&spec.BinaryFraction, "binary-fraction", 0.05, "fraction of keys with binary (non-UTF-8) keys and values")
	fs.BoolVar(&flush, "flush", false, "FLUSHDB the database first")
	return cmd
}
