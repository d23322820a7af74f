package mqtt

import (
	"bytes"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

// TestAppendPublishMatchesPaho checks the connector's PUBLISH encoder
// against paho's, byte for byte, and that paho reads it back.
func TestAppendPublishMatchesPaho(t *testing.T) {
	exp := uint32(90)
	alias := uint16(3)
	long := strings.Repeat("x", 20000) // a three-byte remaining length
	tests := []struct {
		name string
		pb   packets.Publish
	}{
		{"qos0 no properties", packets.Publish{QoS: 0, Topic: "a/b", Payload: []byte("hello")}},
		{"qos1 id", packets.Publish{QoS: 1, PacketID: 513, Topic: "alerts/temp", Payload: []byte(`{"t":1}`)}},
		{"qos2 retain dup", packets.Publish{QoS: 2, PacketID: 65535, Retain: true, Duplicate: true, Topic: "r", Payload: []byte{0, 1, 2}}},
		{"empty payload", packets.Publish{QoS: 1, PacketID: 1, Topic: "e"}},
		{"content type and expiry", packets.Publish{QoS: 1, PacketID: 7, Topic: "c", Payload: []byte("x"),
			Properties: &packets.Properties{ContentType: "application/json", MessageExpiry: &exp}}},
		{"user properties", packets.Publish{QoS: 1, PacketID: 8, Topic: "u", Payload: []byte("x"),
			Properties: &packets.Properties{User: []packets.User{{Key: "traceparent", Value: "00-abc-def-01"}, {Key: "k", Value: ""}}}}},
		{"empty properties", packets.Publish{QoS: 1, PacketID: 9, Topic: "p", Properties: &packets.Properties{}}},
		{"long payload", packets.Publish{QoS: 1, PacketID: 10, Topic: "l", Payload: []byte(long)}},
		{"long user property", packets.Publish{QoS: 0, Topic: "l", Payload: []byte("x"),
			Properties: &packets.Properties{User: []packets.User{{Key: "big", Value: long[:200]}}}}},
		{"other properties (paho's packing)", packets.Publish{QoS: 1, PacketID: 11, Topic: "o", Payload: []byte("x"),
			Properties: &packets.Properties{ResponseTopic: "reply", TopicAlias: &alias, User: []packets.User{{Key: "a", Value: "b"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			if _, err := tt.pb.WriteTo(&want); err != nil {
				t.Fatal(err)
			}
			got := appendPublish([]byte("prefix"), &tt.pb)
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatal("appendPublish overwrote the buffer's contents")
			}
			got = got[len("prefix"):]
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("encoded\n %x\nwant (paho)\n %x", got, want.Bytes())
			}
			cp, err := packets.ReadPacket(bytes.NewReader(got))
			if err != nil {
				t.Fatalf("paho cannot read it back: %v", err)
			}
			back := cp.Content.(*packets.Publish)
			if back.Topic != tt.pb.Topic || !bytes.Equal(back.Payload, tt.pb.Payload) || back.PacketID != tt.pb.PacketID && tt.pb.QoS > 0 {
				t.Fatalf("read back %+v, want %+v", back, tt.pb)
			}
		})
	}
}
