// Command promql-names reads PromQL expressions, one JSON string per line on stdin, and writes one
// JSON line per expression: {"names": [...]} with the metric names of its vector selectors, or
// {"error": "..."} with Prometheus's own parse error. It parses with Prometheus's parser
// (github.com/prometheus/prometheus/promql/parser), so that test/e2e/metrics.test.mjs checks the
// chart's alert rules and dashboard queries as Prometheus will read them.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Names []string `json:"names,omitempty"`
	Error string   `json:"error,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	p := parser.NewParser(parser.Options{})
	for in.Scan() {
		var expr string
		if err := json.Unmarshal(in.Bytes(), &expr); err != nil {
			fmt.Fprintln(os.Stderr, "promql-names: input line is not a JSON string:", err)
			os.Exit(2)
		}
		r := result{Names: []string{}}
		e, err := p.ParseExpr(expr)
		if err != nil {
			r.Error = err.Error()
		} else {
			parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					r.Names = append(r.Names, vs.Name)
				}
				return nil
			})
		}
		if err := out.Encode(r); err != nil {
			os.Exit(1)
		}
	}
}
