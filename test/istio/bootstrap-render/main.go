// Command istio-bootstrap writes the Envoy bootstrap that Istio's agent (pilot-agent) writes for a
// sidecar, with Istio's own code (istio.io/istio/pkg/bootstrap, the package pilot-agent calls) and
// template (tools/packaging/common/envoy_bootstrap.json). The sidecar's ProxyConfig, as
// meshConfig.defaultConfig spells it in JSON, comes on stdin; the template's path is the argument.
// test/controller/istio-metrics.test.mjs takes the stats_config of its output.
package main

import (
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pkg/bootstrap"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: istio-bootstrap <envoy_bootstrap.json template> < proxy-config.json")
		os.Exit(2)
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	pc := &meshconfig.ProxyConfig{}
	if err := protojson.Unmarshal(in, pc); err != nil {
		fail(fmt.Errorf("proxy config: %v", err))
	}
	node, err := bootstrap.GetNodeMetaData(bootstrap.MetadataOptions{
		ID:          "sidecar~127.0.0.1~client.default~default.svc.cluster.local",
		ProxyConfig: pc,
		InstanceIPs: []string{"127.0.0.1"},
	})
	if err != nil {
		fail(err)
	}
	if err := bootstrap.New(bootstrap.Config{Node: node}).WriteTo(os.Args[1], os.Stdout); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "istio-bootstrap:", err)
	os.Exit(1)
}
