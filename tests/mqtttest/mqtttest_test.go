package mqtttest_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

func TestStartStopRestartTLS(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{TLS: true})
	dial := func() error {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatal(err)
	}
	cfg, err := b.Certs().ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", b.TLSURL()[len("mqtts://"):], cfg)
	if err != nil {
		t.Fatalf("TLS handshake with the generated CA: %v", err)
	}
	c.Close()
	pid := b.PID()
	b.Stop()
	if b.Running() || dial() == nil {
		t.Fatal("broker still accepts connections after Stop")
	}
	b.Restart()
	if !b.Running() || b.PID() == pid || dial() != nil {
		t.Fatal("broker did not restart on the same port")
	}
}
