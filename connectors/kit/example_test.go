package kit_test

import (
	"fmt"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// A connector reads its settings once with typed getters, then checks
// once: every mistake is reported, each naming its setting.
func ExampleSettings() {
	// connector mqtt "mqtt://..." keepalive 30 max_inflight 64 offline_policy drop-olest passwrd "${PW}"
	s := kit.Read(pipeline.Params{"keepalive": "30", "max_inflight": "64", "offline_policy": "drop-olest", "passwrd": "hunter2"})
	keepalive := s.Duration("keepalive", 30*time.Second)
	inflight := s.Int("max_inflight", 32, 1, 65535)
	policy := s.Enum("offline_policy", "block", "block", "drop-oldest")
	password := s.Secret("password")
	fmt.Println(keepalive, inflight, policy, password.IsSet())
	fmt.Println(s.Err())
	// Output:
	// 30s 64 block false
	// keepalive "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)
	// offline_policy "drop-olest": want block or drop-oldest (did you mean "drop-oldest"?)
	// passwrd: unknown setting (did you mean "password"?)
}

// One TLS builder for every connector.
func ExampleTLSConfig() {
	s := kit.Read(pipeline.Params{"insecure_skip_verify": "true", "tls_min_version": "1.3"})
	t := kit.ReadTLS(s)
	if err := s.Err(); err != nil {
		panic(err)
	}
	cfg, err := kit.TLSConfig(t)
	fmt.Println(cfg.InsecureSkipVerify, cfg.MinVersion == 0x0304, err)
	// Output: true true <nil>
}
