package expr

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// The fast path must agree exactly with strconv.ParseFloat wherever it
// accepts a literal.
func TestParseFloatMatchesStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fixed := []string{"0.0", ".5", "1.25", "25.0", "2e1", "1e22", "1e-22", "123456789012345.0", "0.000001", "1E3", "3.", "1e+5", "0.1", "0.3"}
	const n = 20000
	accepted := 0
	for i := 0; i < len(fixed)+n; i++ { // generated one at a time: small heaps (cortex-m) stay small
		var s string
		if i < len(fixed) {
			s = fixed[i]
		} else {
			digits := strconv.FormatUint(r.Uint64N(1_000_000_000_000_000), 10)
			dot := r.IntN(len(digits) + 1)
			s = digits[:dot] + "." + digits[dot:]
			if r.IntN(3) == 0 {
				s += "e" + strconv.Itoa(r.IntN(40)-20)
			}
		}
		got, ok := parseFloat(s)
		if !ok {
			continue
		}
		accepted++
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || got != want {
			t.Fatalf("parseFloat(%q) = %v, strconv %v (%v)", s, got, want, err)
		}
	}
	if accepted < n*9/10 {
		t.Fatalf("accepted only %d of %d", accepted, n)
	}
	for _, s := range []string{"1234567890123456.0", "1e400", "e5", ".", "1e", "1.2.3"} {
		if _, ok := parseFloat(s); ok {
			t.Errorf("parseFloat(%q) accepted", s)
		}
	}
}

func TestParseIntMatchesStrconv(t *testing.T) {
	for _, s := range []string{"0", "42", "-42", "+7", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "-9223372036854775809", "18446744073709551616", "", "-", "1a", "0x1"} {
		got, ok := parseInt(s, 10)
		want, err := strconv.ParseInt(s, 10, 64)
		if ok != (err == nil) || ok && got != want {
			t.Errorf("parseInt(%q) = %d, %v; strconv %d, %v", s, got, ok, want, err)
		}
	}
	if v, ok := parseInt("1F", 16); !ok || v != 31 {
		t.Fatal(v, ok)
	}
}
