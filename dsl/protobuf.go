package dsl

import (
	"context"
	"path/filepath"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec/protobuf"
)

// protobufCodec reads `"file.proto" Message` after the codec name
// protobuf and compiles the file (a relative path is next to the .flow
// file).
func (a *args) protobufCodec(at pipeline.Pos) (pipeline.Codec, bool) {
	file, fpos, ok := a.str(`a .proto file and message, e.g. protobuf "reading.proto" Reading`)
	if !ok {
		return nil, false
	}
	msg, _, ok := a.ident("a message name of " + file)
	if !ok {
		return nil, false
	}
	if !filepath.IsAbs(file) && at.File != "" {
		file = filepath.Join(filepath.Dir(at.File), file)
	}
	cd, err := protobuf.Load(context.Background(), file, msg)
	if err != nil {
		a.c.errorf(fpos, "%v", err)
		return nil, false
	}
	return cd, true
}
