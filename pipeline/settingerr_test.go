package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// settingErr is what connectors/kit returns: an error naming a setting.
type settingErr struct{ key, msg string }

func (e *settingErr) Error() string   { return e.key + ": " + e.msg }
func (e *settingErr) Setting() string { return e.key }

func TestSplitErrorsAndSettingOf(t *testing.T) {
	a, b := &settingErr{"qos", "want 0, 1 or 2"}, &settingErr{"retain", "want true or false"}
	plain := errors.New("cannot publish to a topic filter")
	tests := []struct {
		name     string
		err      error
		settings string // SettingOf of each leaf, space-separated ("-" for none)
	}{
		{"nil", nil, ""},
		{"one", a, "qos"},
		{"wrapped once", fmt.Errorf("mqtt: %w", a), "qos"},
		{"joined", errors.Join(a, plain, b), "qos - retain"},
		{"nested joins", errors.Join(errors.Join(a, b), plain), "qos retain -"},
		{"a wrapped join is one leaf about no single setting", fmt.Errorf("mqtt: %w", errors.Join(a, b)), "-"},
	}
	for _, tc := range tests {
		var got []string
		for _, e := range SplitErrors(tc.err) {
			s := SettingOf(e)
			if s == "" {
				s = "-"
			}
			got = append(got, s)
		}
		if strings.Join(got, " ") != tc.settings {
			t.Errorf("%s: %q, want %q", tc.name, strings.Join(got, " "), tc.settings)
		}
	}
}

// optConn rejects every link setting it is given, naming it.
type optConn struct{ testBuilder }

type testBuilder struct{}

func (testBuilder) Scheme() string { return "t" }
func (testBuilder) Build(context.Context, BuildEnv) (Connector, error) {
	return nil, errors.New("unused")
}

func (optConn) ParseLinkOptions(_ Direction, _ string, p Params) (any, error) {
	var errs []error
	for _, k := range []string{"a", "b"} {
		if _, ok := p[k]; ok {
			errs = append(errs, &settingErr{k, "bad"})
		}
	}
	errs = append(errs, errors.New("address problem"))
	return nil, errors.Join(errs...)
}

// Validate reports each link setting error at the setting's position when
// the front end recorded it (ParamsAt), else at the link.
func TestValidateReportsSettingsWhereWritten(t *testing.T) {
	link := Pos{File: "f.flow", Line: 3, Col: 3}
	at := map[string]Pos{"a": {File: "f.flow", Line: 3, Col: 30}, "b": {File: "f.flow", Line: 4, Col: 5}}
	g := New().Connector("t", optConn{})
	g.Record("r").From("t://x", nil, WithParams(Params{"a": "1", "b": "2"}), ParamsAt(at), At(link))
	g.Record("s").From("t://y", nil, WithParams(Params{"a": "1"}), At(link)) // no positions: at the link
	var ve *ValidationError
	if err := g.Validate(); !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, e := range ve.Errors {
		if strings.Contains(e.Msg, "missing codec") {
			continue
		}
		got = append(got, e.Error())
	}
	want := []string{ // in source order
		`f.flow:3:3: record r: "t://x": address problem`,
		`f.flow:3:3: record s: "t://y": a: bad`,
		`f.flow:3:3: record s: "t://y": address problem`,
		`f.flow:3:30: record r: "t://x": a: bad`,
		`f.flow:4:5: record r: "t://x": b: bad`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
