#!/bin/sh
# Regenerates connectors/grpc/flowpb from flow.proto with protoc and the
# pinned plugins (scripts/ensure-grpc.sh installs them into $GRPC_TOOLS).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${GRPC_TOOLS:-$(go env GOPATH)/aimdb-flow-tools/grpc}
PATH="$tools/bin:$PATH"
cd "$root/connectors/grpc/flowpb"
protoc --go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative flow.proto
gofmt -w flow.pb.go flow_grpc.pb.go
