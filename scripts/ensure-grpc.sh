#!/bin/sh
# Installs what the gRPC connector's tests and code generation need:
# protoc (Debian protobuf-compiler), and, built from their modules at
# pinned versions into $GRPC_TOOLS/bin (default
# $(go env GOPATH)/aimdb-flow-tools/grpc/bin): protoc-gen-go,
# protoc-gen-go-grpc and grpcurl. Idempotent; fast when installed.
set -eu
tools=${GRPC_TOOLS:-$(go env GOPATH)/aimdb-flow-tools/grpc}
if ! command -v protoc >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq protobuf-compiler >/dev/null
fi
install() { # binary module@version
	if [ ! -x "$tools/bin/$1" ]; then
		GOBIN="$tools/bin" go install "$2"
	fi
}
install protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
install protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
install grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
