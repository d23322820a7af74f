package opcua

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
)

// types are the scalar data types a record converts to and from.
var types = map[string]ua.TypeID{
	"Boolean": ua.TypeIDBoolean, "SByte": ua.TypeIDSByte, "Byte": ua.TypeIDByte,
	"Int16": ua.TypeIDInt16, "UInt16": ua.TypeIDUint16, "Int32": ua.TypeIDInt32,
	"UInt32": ua.TypeIDUint32, "Int64": ua.TypeIDInt64, "UInt64": ua.TypeIDUint64,
	"Float": ua.TypeIDFloat, "Double": ua.TypeIDDouble, "String": ua.TypeIDString,
	"DateTime": ua.TypeIDDateTime, "ByteString": ua.TypeIDByteString,
}

func typeByName(n string) (ua.TypeID, bool) { t, ok := types[n]; return t, ok }

func typeNames() []string {
	out := make([]string, 0, len(types))
	for n := range types {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// typeName is the ua name of t ("Double").
func typeName(t ua.TypeID) string {
	for n, id := range types {
		if id == t {
			return n
		}
	}
	return t.String()
}

// errMismatch marks a record value the node's type cannot take.
var errMismatch = errors.New("type mismatch")

// recordValue is the value a record payload carries: the "value" member
// of a JSON object that has one, else the whole JSON document; a payload
// that is not JSON is its text (ok false).
func recordValue(p []byte) (v any, ok bool) {
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	if err := d.Decode(&v); err != nil || d.More() {
		return nil, false
	}
	if m, isObj := v.(map[string]any); isObj {
		if x, has := m["value"]; has {
			return x, true
		}
	}
	return v, true
}

// toVariant converts a record payload to a value of type t.
func toVariant(t ua.TypeID, p []byte) (*ua.Variant, error) {
	v, isJSON := recordValue(p)
	if _, obj := v.(map[string]any); t == ua.TypeIDString && (obj || isArray(v)) {
		// An object without "value" or an array: its JSON text as written.
		return ua.MustVariant(string(bytes.TrimSpace(p))), nil
	}
	if !isJSON {
		switch t {
		case ua.TypeIDString:
			return ua.MustVariant(string(p)), nil
		case ua.TypeIDByteString:
			return ua.MustVariant(bytes.Clone(p)), nil
		}
		return nil, fmt.Errorf("%w: payload is not JSON, node is %s", errMismatch, typeName(t))
	}
	x, err := convert(t, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMismatch, err)
	}
	return ua.NewVariant(x)
}

func convert(t ua.TypeID, v any) (any, error) {
	switch t {
	case ua.TypeIDBoolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case ua.TypeIDString:
		if s, ok := v.(string); ok {
			return s, nil
		}
		b, err := json.Marshal(v)
		return string(b), err
	case ua.TypeIDByteString:
		if s, ok := v.(string); ok {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("ByteString wants base64 text: %v", err)
			}
			return b, nil
		}
	case ua.TypeIDDateTime:
		if s, ok := v.(string); ok {
			tm, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, fmt.Errorf("DateTime wants RFC 3339 text: %v", err)
			}
			return tm, nil
		}
	case ua.TypeIDFloat, ua.TypeIDDouble:
		if n, ok := v.(json.Number); ok {
			f, err := n.Float64()
			if err != nil {
				return nil, err
			}
			if t == ua.TypeIDFloat {
				if math.Abs(f) > math.MaxFloat32 {
					return nil, fmt.Errorf("%s overflows Float", n)
				}
				return float32(f), nil
			}
			return f, nil
		}
	default:
		if n, ok := v.(json.Number); ok {
			return convertInt(t, n)
		}
	}
	return nil, fmt.Errorf("node is %s, value is %s", typeName(t), jsonKind(v))
}

// intRange is the range of each integer type.
var intRange = map[ua.TypeID][2]float64{
	ua.TypeIDSByte: {math.MinInt8, math.MaxInt8}, ua.TypeIDByte: {0, math.MaxUint8},
	ua.TypeIDInt16: {math.MinInt16, math.MaxInt16}, ua.TypeIDUint16: {0, math.MaxUint16},
	ua.TypeIDInt32: {math.MinInt32, math.MaxInt32}, ua.TypeIDUint32: {0, math.MaxUint32},
	ua.TypeIDInt64: {math.MinInt64, math.MaxInt64}, ua.TypeIDUint64: {0, math.MaxUint64},
}

func convertInt(t ua.TypeID, n json.Number) (any, error) {
	r, ok := intRange[t]
	if !ok {
		return nil, fmt.Errorf("node type %s is not supported", typeName(t))
	}
	if t == ua.TypeIDUint64 {
		u, err := strconv.ParseUint(n.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a UInt64", n)
		}
		return u, nil
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || float64(i) < r[0] || float64(i) > r[1] {
		return nil, fmt.Errorf("%s is not a whole number in the range of %s", n, typeName(t))
	}
	switch t {
	case ua.TypeIDSByte:
		return int8(i), nil
	case ua.TypeIDByte:
		return uint8(i), nil
	case ua.TypeIDInt16:
		return int16(i), nil
	case ua.TypeIDUint16:
		return uint16(i), nil
	case ua.TypeIDInt32:
		return int32(i), nil
	case ua.TypeIDUint32:
		return uint32(i), nil
	}
	return i, nil
}

func isArray(v any) bool { _, ok := v.([]any); return ok }

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	}
	return "an object"
}

// jsonValue is v as a JSON-encodable value.
func jsonValue(v *ua.Variant) any {
	if v == nil {
		return nil
	}
	switch x := v.Value().(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
	case *ua.LocalizedText:
		if x != nil {
			return x.Text
		}
	case *ua.NodeID:
		return x.String()
	case ua.StatusCode:
		return x.Error()
	case *ua.ExtensionObject, *ua.DataValue, *ua.DiagnosticInfo, *ua.ExpandedNodeID, *ua.QualifiedName, *ua.GUID:
		return fmt.Sprint(x)
	}
	return v.Value()
}

// valueBytes is the payload of a `payload value` link: a String as its
// text, a ByteString as its bytes, anything else as JSON.
func valueBytes(v *ua.Variant) ([]byte, error) {
	if v != nil {
		switch x := v.Value().(type) {
		case string:
			return []byte(x), nil
		case []byte:
			return bytes.Clone(x), nil
		}
	}
	return json.Marshal(jsonValue(v))
}

// valueSize is the length of a String or ByteString value (0 for others).
func valueSize(v *ua.Variant) int {
	if v != nil {
		switch x := v.Value().(type) {
		case string:
			return len(x)
		case []byte:
			return len(x)
		}
	}
	return 0
}

// change is the JSON envelope of one data change.
type change struct {
	Node            string `json:"node"`
	Value           any    `json:"value"`
	Type            string `json:"type,omitempty"`
	Status          string `json:"status"`
	StatusCode      uint32 `json:"status_code"`
	SourceTimestamp string `json:"source_timestamp,omitempty"`
	ServerTimestamp string `json:"server_timestamp,omitempty"`
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// statusName is "Good", "Uncertain..." or the Bad code's name.
func statusName(s ua.StatusCode) string {
	if s == ua.StatusOK {
		return "Good"
	}
	// Error() is "Description. StatusBadName (0x...)": keep BadName.
	msg := s.Error()
	if i := strings.LastIndex(msg, " Status"); i >= 0 {
		name := msg[i+len(" Status"):]
		if j := strings.Index(name, " ("); j >= 0 {
			name = name[:j]
		}
		return name
	}
	return msg
}

// isBad reports a Bad severity status (the top two bits 10).
func isBad(s ua.StatusCode) bool { return uint32(s)>>30 == 2 }

// encodeChange renders a data change for a link.
func encodeChange(node string, dv *ua.DataValue, in In) ([]byte, error) {
	if in.ValueOnly {
		return valueBytes(dv.Value)
	}
	c := change{Node: node, Value: jsonValue(dv.Value), Status: statusName(dv.Status), StatusCode: uint32(dv.Status),
		SourceTimestamp: stamp(dv.SourceTimestamp), ServerTimestamp: stamp(dv.ServerTimestamp)}
	if dv.Value != nil && dv.Value.Type() != ua.TypeIDNull {
		c.Type = typeName(dv.Value.Type())
	}
	return json.Marshal(c)
}
