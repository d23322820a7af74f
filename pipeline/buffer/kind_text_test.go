package buffer

import (
	"encoding/json"
	"testing"
)

func TestKindText(t *testing.T) {
	for _, k := range []Kind{Ring, Latest, Mailbox, Queue} {
		b, err := json.Marshal(Stats{Kind: k})
		if err != nil {
			t.Fatal(err)
		}
		var back Stats
		if err := json.Unmarshal(b, &back); err != nil || back.Kind != k {
			t.Errorf("%s: %s -> %v, %v", k, b, back.Kind, err)
		}
		if want := `{"Kind":"` + k.String() + `"`; string(b[:len(want)]) != want {
			t.Errorf("%s marshals as %s", k, b)
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
