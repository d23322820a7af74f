package grpcconn_test

import (
	"fmt"

	grpcconn "github.com/aimdb-dev/aimdb-flow/connectors/grpc"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// A client balancing over two cloud instances, with a bearer token.
func ExampleParseConfig() {
	cfg, err := grpcconn.ParseConfig("grpc://10.0.0.1:7000,10.0.0.2:7000", pipeline.Params{"token": "s3cret", "max_inflight": "64"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Mode == grpcconn.Client, cfg.Addrs, cfg.MaxInflight, cfg.Token)
	// Output: true [10.0.0.1:7000 10.0.0.2:7000] 64 [redacted]
}
