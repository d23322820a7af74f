package opcua

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gopcua/opcua/ua"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// refusals are write results that concern the value or the node, not the
// connection: retrying the same record cannot help.
var refusals = map[ua.StatusCode]bool{
	ua.StatusBadTypeMismatch: true, ua.StatusBadOutOfRange: true, ua.StatusBadNotWritable: true,
	ua.StatusBadNodeIDUnknown: true, ua.StatusBadNodeIDInvalid: true, ua.StatusBadUserAccessDenied: true,
	ua.StatusBadEncodingLimitsExceeded: true, ua.StatusBadAttributeIDInvalid: true,
	ua.StatusBadWriteNotSupported: true, ua.StatusBadIndexRangeInvalid: true,
	ua.StatusBadArgumentsMissing: true, ua.StatusBadInvalidArgument: true, ua.StatusBadMethodInvalid: true,
	ua.StatusBadTooManyArguments: true, ua.StatusBadNotImplemented: true,
}

// publish writes (or calls) one record.
func (s *session) publish(ctx context.Context, dest string, o Out, payload []byte) error {
	nid, err := s.resolve(ctx, dest)
	if err != nil {
		if st, ok := err.(ua.StatusCode); ok && refusals[st] {
			return pipeline.Permanent(err)
		}
		return err
	}
	if o.Method != "" {
		return s.call(ctx, nid, o, payload)
	}
	t, err := s.nodeType(ctx, dest, nid, o)
	if err != nil {
		return err
	}
	v, err := toVariant(t, payload)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("%s: %w", nid, err))
	}
	res, err := s.cl.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: nid, AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v},
	}}})
	if err != nil {
		return err
	}
	return result(nid, res.Results)
}

func result(nid *ua.NodeID, rs []ua.StatusCode) error {
	if len(rs) != 1 {
		return fmt.Errorf("%s: %d write results", nid, len(rs))
	}
	switch st := rs[0]; {
	case st == ua.StatusOK:
		return nil
	case refusals[st]:
		return pipeline.Permanent(fmt.Errorf("%s: server refused the value: %w", nid, st))
	default:
		return fmt.Errorf("%s: write: %w", nid, st)
	}
}

// nodeType is the data type written to a node: the link's type, or the
// node's DataType attribute (read once per session).
func (s *session) nodeType(ctx context.Context, dest string, nid *ua.NodeID, o Out) (ua.TypeID, error) {
	if o.Type != "" {
		t, _ := typeByName(o.Type)
		return t, nil
	}
	s.mu.Lock()
	t, ok := s.types[dest]
	s.mu.Unlock()
	if ok {
		return t, nil
	}
	res, err := s.cl.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: nid, AttributeID: ua.AttributeIDDataType}}})
	if err != nil {
		return 0, err
	}
	if len(res.Results) != 1 {
		return 0, fmt.Errorf("%s: read data type: %d results", nid, len(res.Results))
	}
	r := res.Results[0]
	if r.Status != ua.StatusOK {
		if refusals[r.Status] {
			return 0, pipeline.Permanent(fmt.Errorf("%s: read data type: %w", nid, r.Status))
		}
		return 0, fmt.Errorf("%s: read data type: %w", nid, r.Status)
	}
	dt := r.Value.NodeID()
	if dt == nil || dt.Namespace() != 0 || dt.IntID() < 1 || dt.IntID() > uint32(ua.TypeIDByteString) {
		return 0, pipeline.Permanent(fmt.Errorf("%s: data type %v is not a scalar built-in type (set the link's type)", nid, dt))
	}
	t = ua.TypeID(dt.IntID())
	s.mu.Lock()
	s.types[dest] = t
	s.mu.Unlock()
	return t, nil
}

// call calls the link's method on the object dest with the record's value
// as input arguments (a JSON array: one per element). Arguments take the
// link's type, or are inferred: whole numbers Int32, other numbers
// Double, text String, true/false Boolean.
func (s *session) call(ctx context.Context, obj *ua.NodeID, o Out, payload []byte) error {
	mid, err := ua.ParseNodeID(o.Method)
	if err != nil {
		return pipeline.Permanent(err)
	}
	v, ok := recordValue(payload)
	if !ok {
		return pipeline.Permanent(fmt.Errorf("%s: method arguments must be JSON", mid))
	}
	args, isArr := v.([]any)
	if !isArr {
		args = []any{v}
	}
	in := make([]*ua.Variant, 0, len(args))
	for i, a := range args {
		t := inferType(a)
		if o.Type != "" {
			t, _ = typeByName(o.Type)
		}
		x, err := convert(t, a)
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("%s: argument %d: %w: %v", mid, i, errMismatch, err))
		}
		vv, err := ua.NewVariant(x)
		if err != nil {
			return pipeline.Permanent(err)
		}
		in = append(in, vv)
	}
	res, err := s.cl.Call(ctx, &ua.CallMethodRequest{ObjectID: obj, MethodID: mid, InputArguments: in})
	if err != nil {
		return err
	}
	if res.StatusCode != ua.StatusOK {
		if refusals[res.StatusCode] {
			return pipeline.Permanent(fmt.Errorf("%s: call: %w", mid, res.StatusCode))
		}
		return fmt.Errorf("%s: call: %w", mid, res.StatusCode)
	}
	return nil
}

func inferType(v any) ua.TypeID {
	switch x := v.(type) {
	case bool:
		return ua.TypeIDBoolean
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return ua.TypeIDInt32
		}
		return ua.TypeIDDouble
	}
	return ua.TypeIDString
}
