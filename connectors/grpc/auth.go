package grpcconn

import (
	"context"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
)

// authorized reports whether ctx's metadata holds the bearer token
// (compared in constant time).
func authorized(ctx context.Context, token kit.Secret) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		got, ok := strings.CutPrefix(v, "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(got), []byte(token.Value())) == 1 {
			return true
		}
	}
	return false
}

// tokenInterceptors refuse calls without the token (Unauthenticated).
func tokenInterceptors(token kit.Secret) []grpc.ServerOption {
	deny := status.Error(codes.Unauthenticated, "missing or wrong bearer token")
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if !authorized(ctx, token) {
				return nil, deny
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if !authorized(ss.Context(), token) {
				return deny
			}
			return h(srv, ss)
		}),
	}
}

// bearer is the client's per-RPC credential.
type bearer struct {
	token  kit.Secret
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token.Value()}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }
