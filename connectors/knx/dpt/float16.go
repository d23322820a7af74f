package dpt

import (
	"fmt"
	"math"
)

// The 2-byte float of DPT 9: value = 0.01 · M · 2^E, with M a 12-bit
// two's complement mantissa (the sign is the top bit) and E a 4-bit
// exponent: MEEE EMMM MMMM MMMM.

const (
	float16Max = 0.01 * 2047 * (1 << 15)  // 670760.96
	float16Min = -0.01 * 2048 * (1 << 15) // -671088.64
)

func decodeFloat16(raw uint16) float64 {
	m := int32(raw & 0x7ff)
	if raw&0x8000 != 0 {
		m -= 2048
	}
	e := (raw >> 11) & 0xf
	return math.Round(float64(m)*float64(int32(1)<<e)) / 100 // 0.01 steps at E=0
}

func encodeFloat16(f float64) (uint16, error) {
	if f > float16Max || f < float16Min {
		return 0, fmt.Errorf("%v is out of the 2-byte float range %v to %v", f, float16Min, float16Max)
	}
	v := f * 100
	for e := uint16(0); e <= 15; e++ {
		m := math.Round(v / float64(int32(1)<<e))
		if m >= -2048 && m <= 2047 {
			mi := int32(m)
			raw := e<<11 | uint16(mi)&0x7ff
			if mi < 0 {
				raw |= 0x8000
			}
			if raw == 0x7fff {
				return 0, fmt.Errorf("%v encodes as 0x7fff, the invalid-data marker", f)
			}
			return raw, nil
		}
	}
	return 0, fmt.Errorf("%v is out of the 2-byte float range", f)
}
