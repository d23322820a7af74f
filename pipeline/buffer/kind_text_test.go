package buffer

import "testing"

// The JSON side (`"Kind": "queue"` in /stats) is checked by the CLI's
// tests; this file stays free of encoding/json, as it also runs under
// TinyGo on small boards.
func TestKindText(t *testing.T) {
	for _, k := range []Kind{Ring, Latest, Mailbox, Queue} {
		b, err := k.MarshalText()
		if err != nil || string(b) != k.String() {
			t.Errorf("%s: MarshalText = %q, %v", k, b, err)
		}
		var back Kind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("%s: UnmarshalText(%q) = %v, %v", k, b, back, err)
		}
	}
	var k Kind
	if err := k.UnmarshalText([]byte("rnig")); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := Kind(9).MarshalText(); err == nil {
		t.Error("kind 9 marshalled")
	}
}
