package jsonflat

import "unsafe"

// bytesString views b as a string without copying (for strconv parsers that
// do not retain their argument).
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
