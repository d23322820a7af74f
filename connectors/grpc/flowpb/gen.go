// Package flowpb is the generated Go code of the aimdb.flow.v1 service
// (flow.proto). Regenerate with `go generate ./connectors/grpc/flowpb`
// (needs protoc and the plugins scripts/ensure-grpc.sh installs).
package flowpb

//go:generate sh ../../../scripts/gen-grpc.sh
