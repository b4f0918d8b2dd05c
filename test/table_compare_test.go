package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
	"github.com/cutover/cutover/test/stack"
)

// tableItems reads a table's live items (not tombstones), without
// cutover's version attribute, by item key.
func tableItems(t *testing.T, db *dynamodb.Client, table string) map[string]map[string]pipeline.Attr {
	t.Helper()
	out := map[string]map[string]pipeline.Attr{}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(testCtx(t, time.Minute))
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		for _, raw := range page.Items {
			if _, tomb := raw["cutover_deleted"]; tomb {
				continue
			}
			item := dynamoattr.FromItem(raw)
			delete(item, "cutover_version")
			key := pipeline.EncodeItemKey([]pipeline.KeyAttr{{Name: "userId", Value: item["userId"]}, {Name: "orderId", Value: item["orderId"]}})
			out[string(key)] = item
		}
	}
	return out
}

// compareTables fails t unless both tables hold the same items.
func compareTables(t *testing.T, want, got map[string]map[string]pipeline.Attr) {
	t.Helper()
	bad := 0
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("item %s missing in the target", k)
			bad++
		default:
			if d := pipeline.Diff(&pipeline.Value{Type: pipeline.TypeItem, Item: w}, &pipeline.Value{Type: pipeline.TypeItem, Item: g}); d != "" {
				t.Errorf("item %s differs: %s", k, d)
				bad++
			}
		}
		if bad > 10 {
			t.FailNow()
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("item %s is in the target only", k)
		}
	}
}

// redisHashOf is, independently of cutover's code, the hash an item should
// become: scalars as text or bytes, everything else as plain JSON.
func redisHashOf(item map[string]pipeline.Attr) map[string]string {
	var plain func(a pipeline.Attr) any
	plain = func(a pipeline.Attr) any {
		switch a.Kind {
		case pipeline.AttrS:
			return a.S
		case pipeline.AttrN:
			return json.Number(a.N)
		case pipeline.AttrB:
			return a.B // encoding/json writes base64
		case pipeline.AttrBOOL:
			return a.BOOL
		case pipeline.AttrL:
			l := []any{}
			for _, x := range a.L {
				l = append(l, plain(x))
			}
			return l
		case pipeline.AttrM:
			m := map[string]any{}
			for k, x := range a.M {
				m[k] = plain(x)
			}
			return m
		case pipeline.AttrSS:
			return a.SS
		case pipeline.AttrNS:
			l := []json.Number{}
			for _, n := range a.NS {
				l = append(l, json.Number(n))
			}
			return l
		case pipeline.AttrBS:
			return a.BS
		case pipeline.AttrNULL:
		}
		return nil
	}
	h := map[string]string{}
	for name, a := range item {
		switch a.Kind {
		case pipeline.AttrS:
			h[name] = a.S
		case pipeline.AttrN:
			h[name] = a.N
		case pipeline.AttrB:
			h[name] = string(a.B)
		case pipeline.AttrBOOL:
			h[name] = fmt.Sprint(a.BOOL)
		case pipeline.AttrNULL:
			h[name] = ""
		default:
			b, _ := json.Marshal(plain(a))
			h[name] = string(b)
		}
	}
	return h
}

// compareRedisHashes fails t unless dst holds, for each item, the hash
// "order:<userId>:<orderId>" it should, with its expiry, and no other key.
func compareRedisHashes(t *testing.T, want map[string]map[string]pipeline.Attr, dst *stack.Redis, db int) {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	cl := goredis.NewClient(&goredis.Options{Addr: dst.Addr, DB: db})
	defer cl.Close()
	names := map[string]bool{}
	bad := 0
	for _, item := range want {
		name := "order:" + item["userId"].S + ":" + item["orderId"].N
		names[name] = true
		got, err := cl.HGetAll(ctx, name).Result()
		if err != nil {
			t.Fatal(err)
		}
		exp := redisHashOf(item)
		if len(got) != len(exp) {
			t.Errorf("%s: %d fields, want %d: %v", name, len(got), len(exp), got)
			bad++
		}
		for f, v := range exp {
			if got[f] != v {
				t.Errorf("%s field %s = %q, want %q", name, f, got[f], v)
				bad++
				break
			}
		}
		if e, ok := item["expires"]; ok {
			at, err := cl.ExpireTime(ctx, name).Result()
			if err != nil || fmt.Sprint(int64(at.Seconds())) != e.N {
				t.Errorf("%s expires at %v (%v), want %s", name, at, err, e.N)
				bad++
			}
		}
		if bad > 10 {
			t.FailNow()
		}
	}
	iter := cl.Scan(ctx, 0, "", 1000).Iterator()
	extra := 0
	for iter.Next(ctx) {
		k := iter.Val()
		if !strings.HasPrefix(k, "cutover:v:") && !names[k] {
			extra++
			if extra < 10 {
				t.Errorf("key %s is in the target only", k)
			}
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
}
