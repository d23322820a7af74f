package knx

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx/dpt"
	"github.com/aimdb-dev/aimdb-flow/connectors/knx/knxnet"
)

// inboundPayload renders a received group telegram for a link: the raw
// group value without a DPT, else a JSON object. A value that does not
// decode as the DPT returns the raw bytes and why (the message is then
// rejected: dead-lettered by the runner with that reason).
func inboundPayload(l *knxnet.LData, style knxnet.AddressStyle, t dpt.Type, typed bool) ([]byte, error) {
	if !typed {
		return append([]byte(nil), l.Data...), nil
	}
	v, err := t.Decode(l.Data)
	if err != nil {
		err = fmt.Errorf("knx: malformed group value: %s from %s: %w (bytes % x)", l.Dest.Format(style), l.Source, err, l.Data)
		return append([]byte(nil), l.Data...), err
	}
	m := map[string]any{
		"dpt":     t.ID,
		"ga":      l.Dest.Format(style),
		"src":     l.Source.String(),
		"service": l.APCI.String(),
		"value":   v,
	}
	if t.Unit != "" {
		m["unit"] = t.Unit
	}
	if txt := t.Text(v); txt != "" {
		m["text"] = txt
	}
	return json.Marshal(m)
}

// outboundValue turns a record's payload into the group value bytes for
// a link: the bytes as they are without a DPT, else the JSON value (or
// the "value" field of a JSON object) encoded as the DPT. short reports
// that the value travels in the APCI octet.
func outboundValue(payload []byte, t dpt.Type, typed bool) (data []byte, short bool, err error) {
	if !typed {
		if len(payload) > knxnet.MaxData {
			return nil, false, fmt.Errorf("payload of %d bytes, at most %d fit a group telegram", len(payload), knxnet.MaxData)
		}
		return append([]byte(nil), payload...), false, nil
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("dpt %s: payload is not a JSON value: %w", t.ID, err)
	}
	if d.More() {
		return nil, false, fmt.Errorf("dpt %s: payload has data after its JSON value", t.ID)
	}
	if m, ok := v.(map[string]any); ok {
		if inner, ok := m["value"]; ok {
			v = inner
		}
	}
	if m, ok := v.(map[string]any); ok {
		for k, x := range m { // json.Number inside objects (18.x)
			if n, ok := x.(json.Number); ok {
				if f, err := n.Float64(); err == nil {
					m[k] = f
				}
			}
		}
	}
	data, err = t.Encode(v)
	if err != nil {
		return nil, false, err
	}
	return data, t.Short, nil
}
