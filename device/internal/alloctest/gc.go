//go:build !tinygo

package alloctest

// TinyGo reports whether the code was compiled by TinyGo.
const TinyGo = false
