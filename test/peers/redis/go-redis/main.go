// go-redis v9 (github.com/redis/go-redis/v9, pinned in go.mod) as a real Redis client for
// Meltemi's end-to-end tests. Usage:
//
//	go-redis SCENARIO PORT [--db N] [--name NAME] [--username U] [--password P] [--protocol 2|3] [--capture]
//
// Scenarios:
//
//	script  runs the steps read from stdin (a JSON array) on ONE dedicated connection,
//	        client.Conn(), and prints one JSON line per step. A step is
//	        {"do": [args...]}, {"pipeline": [[args...], ...]} (Conn().Pipelined) or
//	        {"tx": [[args...], ...]} (Conn().TxPipelined: MULTI ... EXEC). A reply prints as
//	        {"result": value}, an error as {"error": message, "redis": true when it is a
//	        redis.Error (an error reply), false for a network or client error}; a pipeline
//	        prints {"results": [reply, ...]} and its first error as "error".
//	        With --capture, the first line is {"handshake": "..."}: every byte go-redis wrote
//	        on that connection before its first step, one string per write (it opens the
//	        connection with a PING).
//	pool    the client's own pool (PoolSize 8): 8 goroutines × 25 rounds of INCR go:pool and
//	        CLIENT INFO; prints {"incr_max", "client_infos": {"db=.. name=.. resp=..": count}}.
//
// The client never retries (MaxRetries -1), so a closed connection shows as an error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// recorder keeps what go-redis writes on a connection.
type recorder struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, string(p))
	r.mu.Unlock()
	return r.Conn.Write(p)
}

func (r *recorder) written() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

// plain turns a reply into something encoding/json prints (RESP3 maps have interface keys).
func plain(v interface{}) interface{} {
	switch x := v.(type) {
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case map[interface{}]interface{}:
		out := make(map[string]interface{}, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = plain(e)
		}
		return out
	default:
		return x
	}
}

func reply(v interface{}, err error) map[string]interface{} {
	if errors.Is(err, redis.Nil) {
		return map[string]interface{}{"result": nil}
	}
	if err != nil {
		var re redis.Error
		return map[string]interface{}{"error": err.Error(), "redis": errors.As(err, &re)}
	}
	return map[string]interface{}{"result": plain(v)}
}

type step struct {
	Do       []interface{}   `json:"do"`
	Pipeline [][]interface{} `json:"pipeline"`
	Tx       [][]interface{} `json:"tx"`
}

func batch(ctx context.Context, run func(context.Context, func(redis.Pipeliner) error) ([]redis.Cmder, error), cmds [][]interface{}) map[string]interface{} {
	var sent []*redis.Cmd
	_, err := run(ctx, func(p redis.Pipeliner) error {
		for _, args := range cmds {
			sent = append(sent, p.Do(ctx, args...))
		}
		return nil
	})
	results := make([]interface{}, len(sent))
	for i, c := range sent {
		results[i] = reply(c.Result())
	}
	out := map[string]interface{}{"results": results}
	if err != nil && !errors.Is(err, redis.Nil) {
		out["error"] = err.Error()
	}
	return out
}

func script(ctx context.Context, client *redis.Client, rec func() *recorder, capture bool, emit func(interface{})) error {
	var steps []step
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(in, &steps); err != nil {
		return fmt.Errorf("steps on stdin: %w", err)
	}
	conn := client.Conn()
	defer conn.Close()
	if capture {
		if err := conn.Ping(ctx).Err(); err != nil {
			emit(map[string]interface{}{"handshake": recorded(rec), "error": err.Error()})
			return nil
		}
		// Everything before the PING that made the connection, one string per write.
		w := recorded(rec)
		if n := len(w); n > 0 && w[n-1] == "*1\r\n$4\r\nping\r\n" {
			w = w[:n-1]
		}
		emit(map[string]interface{}{"handshake": w})
	}
	for _, s := range steps {
		switch {
		case s.Do != nil:
			emit(reply(conn.Do(ctx, s.Do...).Result()))
		case s.Pipeline != nil:
			emit(batch(ctx, conn.Pipelined, s.Pipeline))
		case s.Tx != nil:
			emit(batch(ctx, conn.TxPipelined, s.Tx))
		default:
			return fmt.Errorf("a step needs do, pipeline or tx: %s", in)
		}
	}
	return nil
}

func recorded(rec func() *recorder) []string {
	if r := rec(); r != nil {
		return r.written()
	}
	return nil
}

func pool(ctx context.Context, client *redis.Client, emit func(interface{})) error {
	var mu sync.Mutex
	infos := map[string]int{}
	max := int64(0)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				n, err := client.Incr(ctx, "go:pool").Result()
				if err != nil {
					errs <- err
					return
				}
				info, err := client.ClientInfo(ctx).Result()
				if err != nil {
					errs <- err
					return
				}
				key := fmt.Sprintf("db=%d name=%s resp=%d", info.DB, info.Name, info.Resp)
				mu.Lock()
				infos[key]++
				if n > max {
					max = n
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	keys := make([]string, 0, len(infos))
	for k := range infos {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	emit(map[string]interface{}{"incr_max": max, "client_infos": infos, "kinds": keys, "pool_total": client.PoolStats().TotalConns})
	return nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: go-redis script|pool PORT [--db N] [--name NAME] [--username U] [--password P] [--protocol 2|3] [--capture]")
		os.Exit(2)
	}
	scenario, port := os.Args[1], os.Args[2]
	if _, err := strconv.Atoi(port); err != nil {
		fmt.Fprintf(os.Stderr, "bad port %q\n", port)
		os.Exit(2)
	}
	fs := flag.NewFlagSet("go-redis", flag.ExitOnError)
	db := fs.Int("db", 0, "database (SELECT after HELLO)")
	name := fs.String("name", "", "ClientName (HELLO SETNAME and CLIENT SETNAME)")
	username := fs.String("username", "", "ACL user")
	password := fs.String("password", "", "password (HELLO AUTH, else AUTH)")
	protocol := fs.Int("protocol", 3, "RESP version for HELLO")
	capture := fs.Bool("capture", false, "script: print the handshake bytes first")
	fs.Parse(os.Args[3:])

	var mu sync.Mutex
	var first *recorder
	client := redis.NewClient(&redis.Options{
		Addr:       "127.0.0.1:" + port,
		DB:         *db,
		ClientName: *name,
		Username:   *username,
		Password:   *password,
		Protocol:   *protocol,
		PoolSize:   8,
		// No retries: a failed call shows; go-redis would otherwise retry it on a new connection.
		MaxRetries:  -1,
		DialTimeout: 5 * time.Second,
		ReadTimeout: 5 * time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			r := &recorder{Conn: c}
			mu.Lock()
			if first == nil {
				first = r
			}
			mu.Unlock()
			return r, nil
		},
	})
	defer client.Close()
	rec := func() *recorder { mu.Lock(); defer mu.Unlock(); return first }

	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	emit := func(v interface{}) {
		if err := enc.Encode(v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	ctx := context.Background()
	var err error
	switch scenario {
	case "script":
		err = script(ctx, client, rec, *capture, emit)
	case "pool":
		err = pool(ctx, client, emit)
	default:
		err = fmt.Errorf("unknown scenario %q", scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
