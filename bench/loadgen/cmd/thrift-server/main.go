// A real Apache Thrift server (github.com/apache/thrift, Go) for the benchmark: the Greeter service
// of test/peers/thrift/meltemi_test.thrift, framed transport, binary protocol. It is the bench's
// Thrift server because the Node server (npm thrift) tops out far below Envoy on this machine;
// `bench/run.mjs --thrift-server node` uses the Node one instead. With --transport header it is
// a THeader server (which also answers framed and unframed clients in their own kind), the e2e
// tests' THeader peer: the Node library's THeader server answers THeader calls unframed.
//
//	thrift-server --port 0 --name v1 [--transport framed|header]   prints "READY port=N" once listening
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/apache/thrift/lib/go/thrift"
	mt "meltemi.dev/bench/loadgen/gen/meltemitest"
)

type greeter struct{ name string }

func (g *greeter) SayHello(_ context.Context, who string) (string, error) {
	return g.name + ": hello " + who, nil
}
func (g *greeter) Ping(context.Context, string) error { return nil }

// Echo answers its payload, except "header:<key>": the value of that THeader key/value of the
// call (what a test reads to see a header Meltemi wrote), "<none>" without it.
func (g *greeter) Echo(ctx context.Context, payload string) (string, error) {
	if key, ok := strings.CutPrefix(payload, "header:"); ok {
		if v, found := thrift.GetHeader(ctx, key); found {
			return v, nil
		}
		return "<none>", nil
	}
	return payload, nil
}
func (g *greeter) Add(_ context.Context, a, b int32) (int32, error) {
	if a < 0 {
		return 0, &mt.GreetError{Code: 1, Message: g.name + ": negative a"}
	}
	return a + b, nil
}

func main() {
	port := flag.Int("port", 0, "listen port (0: any free port)")
	name := flag.String("name", "v1", "server name in sayHello replies")
	transport := flag.String("transport", "framed", "framed (binary protocol) or header (THeader, binary or compact inside)")
	flag.Parse()
	sock, err := thrift.NewTServerSocket(fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg := &thrift.TConfiguration{}
	var transports thrift.TTransportFactory
	var protocols thrift.TProtocolFactory
	switch *transport {
	case "framed":
		transports = thrift.NewTFramedTransportFactoryConf(thrift.NewTTransportFactory(), cfg)
		protocols = thrift.NewTBinaryProtocolFactoryConf(cfg)
	case "header":
		transports = thrift.NewTHeaderTransportFactoryConf(nil, cfg)
		protocols = thrift.NewTHeaderProtocolFactoryConf(cfg)
	default:
		fmt.Fprintln(os.Stderr, "--transport: framed or header, not", *transport)
		os.Exit(2)
	}
	srv := thrift.NewTSimpleServer4(mt.NewGreeterProcessor(&greeter{name: *name}), sock, transports, protocols)
	if err := srv.Listen(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("READY port=%d\n", sock.Addr().(*net.TCPAddr).Port)
	if err := srv.Serve(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
