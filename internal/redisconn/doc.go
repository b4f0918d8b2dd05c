// Package redisconn is what cutover's Redis source and Redis sink share
// about a Redis server: how to reach it (Conn, Connect, ConnectCluster, a
// Sentinel's FailoverClient), what its errors mean to someone who must
// fix them (Explain), and what they mean to the code that called
// (Classify).
//
// Clients made here never retry on their own (go-redis's MaxRetries is
// off): the caller owns the retries of its calls, with internal/retry,
// and decides with Classify which errors to retry. The classes are the
// same for every caller; what each does with a class is its own choice
// (docs/DESIGN.md §7).
package redisconn
