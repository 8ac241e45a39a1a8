// Thrift load generator for bench/run.mjs: keeps `-depth` framed-binary calls in flight on each
// of `-conns` connections (pipelining), times each call from write to its reply (matched by seqid),
// and prints one JSON summary line. The request frame is encoded once with the real Apache Thrift
// Go library (Greeter.echo(payload)); only its seqid is patched per call.
//
//	loadgen -targets 127.0.0.1:9090[,host:port...] -conns 16 -depth 4 -payload 4096 -duration 10s -warmup 2s
//	loadgen -serve-echo -port 0   a trivial reply-by-echo server (prints READY port=N): the
//	                              generator's own ceiling, with no Thrift processing behind it
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	mt "meltemi.dev/bench/loadgen/gen/meltemitest"
)

const (
	msgCall      = 1
	msgReply     = 2
	msgException = 3
)

func main() {
	targets := flag.String("targets", "", "comma-separated host:port; connections are spread over them")
	conns := flag.Int("conns", 1, "connections")
	depth := flag.Int("depth", 1, "calls in flight per connection (1: no pipelining)")
	payload := flag.Int("payload", 16, "echo payload bytes")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time before it")
	serve := flag.Bool("serve-echo", false, "run the echo server instead")
	port := flag.Int("port", 0, "echo server port")
	flag.Parse()
	if *serve {
		serveEcho(*port)
		return
	}
	if *targets == "" || *conns < 1 || *depth < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: -targets, -conns >= 1 and -depth >= 1 required")
		os.Exit(2)
	}
	frame, seqOff := encodeEcho(*payload)
	res := run(strings.Split(*targets, ","), *conns, *depth, frame, seqOff, *warmup, *duration)
	res["payload"] = *payload
	res["frameBytes"] = len(frame)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// encodeEcho returns a framed, strict-binary Greeter.echo call and the offset of its seqid.
func encodeEcho(n int) ([]byte, int) {
	cfg := &thrift.TConfiguration{}
	buf := thrift.NewTMemoryBuffer()
	p := thrift.NewTBinaryProtocolConf(buf, cfg)
	ctx := context.Background()
	args := mt.GreeterEchoArgs{Payload: strings.Repeat("x", n)}
	if err := p.WriteMessageBegin(ctx, "echo", thrift.CALL, 0); err != nil {
		panic(err)
	}
	if err := args.Write(ctx, p); err != nil {
		panic(err)
	}
	if err := p.WriteMessageEnd(ctx); err != nil {
		panic(err)
	}
	p.Flush(ctx)
	body := buf.Bytes()
	frame := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(frame, uint32(len(body)))
	copy(frame[4:], body)
	return frame, 4 + 4 + 4 + len("echo")
}

type conn struct {
	lat    []uint32 // µs, measured calls only
	done   int64
	errors int64
}

func run(targets []string, nconns, depth int, frame []byte, seqOff int, warmup, duration time.Duration) map[string]any {
	var measuring, stopping atomic.Bool
	var wg sync.WaitGroup
	cs := make([]*conn, nconns)
	var failed atomic.Int64
	var firstErr atomic.Value
	for i := 0; i < nconns; i++ {
		c := &conn{lat: make([]uint32, 0, 1<<16)}
		cs[i] = c
		nc, err := net.Dial("tcp", targets[i%len(targets)])
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		nc.(*net.TCPConn).SetNoDelay(true)
		wg.Add(1)
		go func(nc net.Conn) {
			defer wg.Done()
			defer nc.Close()
			if err := c.drive(nc, depth, frame, seqOff, &measuring, &stopping); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}(nc)
	}
	time.Sleep(warmup)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	stopping.Store(true)
	wg.Wait()
	var all []uint32
	var errs, total int64
	for _, c := range cs {
		all = append(all, c.lat...)
		errs += c.errors
		total += c.done
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(q float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(q * float64(len(all)))
		if i >= len(all) {
			i = len(all) - 1
		}
		return float64(all[i])
	}
	res := map[string]any{
		"conns": nconns, "depth": depth, "requests": len(all), "errors": errs, "totalRequests": total,
		"failedConnections": failed.Load(),
		"durationS":         elapsed.Seconds(),
		"throughput":        float64(len(all)) / elapsed.Seconds(),
		"p50Us":             pct(0.50), "p90Us": pct(0.90), "p99Us": pct(0.99), "maxUs": pct(1),
	}
	if e := firstErr.Load(); e != nil {
		res["firstError"] = e
	}
	return res
}

// drive keeps `depth` calls in flight until stopping, then waits for the answers in flight.
func (c *conn) drive(nc net.Conn, depth int, frame []byte, seqOff int, measuring, stopping *atomic.Bool) error {
	req := append([]byte(nil), frame...)
	var mu sync.Mutex
	sent := make(map[uint32]int64, depth) // send time (ns) by seqid: replies may come out of order
	tokens := make(chan struct{}, depth)
	for i := 0; i < depth; i++ {
		tokens <- struct{}{}
	}
	readErr := make(chan error, 1)
	var issued, answered atomic.Int64
	epoch := time.Now()
	go func() {
		r := bufio.NewReaderSize(nc, 64<<10)
		var hdr [4]byte
		body := make([]byte, 0, len(frame)+256)
		for {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				readErr <- err
				return
			}
			n := int(binary.BigEndian.Uint32(hdr[:]))
			if cap(body) < n {
				body = make([]byte, n)
			}
			body = body[:n]
			if _, err := io.ReadFull(r, body); err != nil {
				readErr <- err
				return
			}
			now := time.Since(epoch).Nanoseconds()
			if n < 12 {
				readErr <- fmt.Errorf("short reply frame (%d bytes)", n)
				return
			}
			typ := body[3]
			nameLen := int(binary.BigEndian.Uint32(body[4:8]))
			if 8+nameLen+4 > n {
				readErr <- fmt.Errorf("bad reply frame")
				return
			}
			seq := binary.BigEndian.Uint32(body[8+nameLen:])
			mu.Lock()
			t0, ok := sent[seq]
			delete(sent, seq)
			mu.Unlock()
			if !ok {
				readErr <- fmt.Errorf("reply with unknown seqid %d", seq)
				return
			}
			if typ != msgReply {
				c.errors++
			}
			answered.Add(1)
			if measuring.Load() {
				c.lat = append(c.lat, uint32((now-t0)/1000))
			}
			tokens <- struct{}{}
		}
	}()
	defer func() { c.done = answered.Load() }()
	for !stopping.Load() {
		select {
		case <-tokens:
		case err := <-readErr:
			return err
		}
		seq := issued.Load()
		binary.BigEndian.PutUint32(req[seqOff:], uint32(seq))
		mu.Lock()
		sent[uint32(seq)] = time.Since(epoch).Nanoseconds()
		mu.Unlock()
		issued.Add(1)
		if _, err := nc.Write(req); err != nil {
			return err
		}
	}
	deadline := time.After(5 * time.Second)
	for answered.Load() < issued.Load() {
		select {
		case <-tokens:
		case err := <-readErr:
			return err
		case <-deadline:
			return fmt.Errorf("%d calls unanswered at the end", issued.Load()-answered.Load())
		}
	}
	return nil
}

// serveEcho answers each framed call with the same frame marked as a reply.
func serveEcho(port int) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("READY port=%d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer nc.Close()
			r := bufio.NewReaderSize(nc, 64<<10)
			w := bufio.NewWriterSize(nc, 64<<10)
			var hdr [4]byte
			var body []byte
			for {
				if _, err := io.ReadFull(r, hdr[:]); err != nil {
					return
				}
				n := int(binary.BigEndian.Uint32(hdr[:]))
				if cap(body) < n {
					body = make([]byte, n)
				}
				body = body[:n]
				if _, err := io.ReadFull(r, body); err != nil {
					return
				}
				if n > 3 && body[3] == msgCall {
					body[3] = msgReply
				}
				w.Write(hdr[:])
				w.Write(body)
				if r.Buffered() == 0 {
					if w.Flush() != nil {
						return
					}
				}
			}
		}()
	}
}
