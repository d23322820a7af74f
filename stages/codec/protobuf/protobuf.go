// Package protobuf is a protobuf codec compiled at load from a .proto
// file (github.com/bufbuild/protocompile) and run with dynamicpb: Decode
// gives the framework's usual decoded form (map[string]any with float64
// numbers, as the JSON codec gives), so expressions work on the fields;
// Encode takes that form back to the wire format. In a .flow file:
//
//	from "mqtt://sensors/+" decode protobuf "reading.proto" Reading
package protobuf

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Codec decodes and encodes one message type.
type Codec struct {
	md protoreflect.MessageDescriptor
}

// Load compiles file (imports resolve next to it, and the well-known
// types) and returns the codec of message (a full name, or a name in the
// file's package).
func Load(ctx context.Context, file, message string) (*Codec, error) {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		ImportPaths: []string{filepath.Dir(file)},
	})}
	fs, err := c.Compile(ctx, filepath.Base(file))
	if err != nil {
		return nil, fmt.Errorf("protobuf %s: %w", file, err)
	}
	f := fs[0]
	names := []protoreflect.FullName{protoreflect.FullName(message)}
	if pkg := f.Package(); pkg != "" {
		names = append(names, pkg.Append(protoreflect.Name(message)))
	}
	for _, n := range names {
		if md, ok := f.FindDescriptorByName(n).(protoreflect.MessageDescriptor); ok {
			return &Codec{md: md}, nil
		}
	}
	var known []string
	for i := range f.Messages().Len() {
		known = append(known, string(f.Messages().Get(i).Name()))
	}
	return nil, fmt.Errorf("protobuf %s: no message %q (messages: %v)", file, message, known)
}

// Name implements pipeline.Codec.
func (c *Codec) Name() string { return "protobuf" }

// Decode implements pipeline.Decoder: the message as map[string]any
// (field names as in the .proto; numbers as float64, 64-bit integers
// included; bytes as []byte; enums as their value names; unset fields
// left out).
func (c *Codec) Decode(p []byte) (any, error) {
	m := dynamicpb.NewMessage(c.md)
	if err := proto.Unmarshal(p, m); err != nil {
		return nil, fmt.Errorf("protobuf %s: %w", c.md.FullName(), err)
	}
	return message(m), nil
}

// Encode implements pipeline.Encoder: v in the decoded form (or anything
// the JSON codec encodes to an object with the message's fields); a
// field of the wrong type or name is an error.
func (c *Codec) Encode(v any) ([]byte, error) {
	js, err := codec.JSON{}.Encode(v)
	if err != nil {
		return nil, fmt.Errorf("protobuf %s: %w", c.md.FullName(), err)
	}
	m := dynamicpb.NewMessage(c.md)
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, m); err != nil {
		return nil, fmt.Errorf("protobuf %s: %w", c.md.FullName(), err)
	}
	return proto.Marshal(m)
}

func message(m protoreflect.Message) map[string]any {
	out := map[string]any{}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		out[string(fd.Name())] = field(fd, v)
		return true
	})
	return out
}

func field(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch {
	case fd.IsList():
		l := v.List()
		out := make([]any, l.Len())
		for i := range out {
			out[i] = scalar(fd, l.Get(i))
		}
		return out
	case fd.IsMap():
		out := map[string]any{}
		v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			out[k.String()] = scalar(fd.MapValue(), mv)
			return true
		})
		return out
	}
	return scalar(fd, v)
}

func scalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return append([]byte(nil), v.Bytes()...)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return float64(v.Enum())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return message(v.Message())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return float64(v.Uint())
	default:
		return float64(v.Int())
	}
}
