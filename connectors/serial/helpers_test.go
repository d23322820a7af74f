package serial_test

import (
	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

func jsonflatDecode(b []byte, o *value.Object) error { return jsonflat.Decode(b, o) }
