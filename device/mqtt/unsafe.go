package mqtt

import "unsafe"

// bytesString views b as a string without copying (for matching and for
// APIs that copy their argument).
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
