package reliability

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/dsl"
)

// brokenFlows are .flow snippets with one mistake each, and where (line)
// it is. Covered: lexer, parser, compiler (statements, arguments,
// expressions, codecs, buffers, durations, ${ENV}) and graph validation.
var brokenFlows = []struct {
	name string
	line int
	src  string
}{
	{"unterminated string", 1, `connector mqtt "mqtt://127.0.0.1:1883`},
	{"unterminated backquote", 4, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\npipeline p { from r\n filter `a > 1\n}"},
	{"unknown statement", 2, "connector mem \"mem://\"\nconector x \"mem://\""},
	{"missing brace", 2, "connector mem \"mem://\"\nrecord r  from \"mem://a\" decode json"},
	{"unclosed block", 2, "connector mem \"mem://\"\nrecord r {\n from \"mem://a\" decode json\n"},
	{"unknown scheme", 1, `connector x "nosuch://host"`},
	{"unknown codec", 2, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode yaml }"},
	{"bad buffer", 3, "connector mem \"mem://\"\nrecord r {\n  buffer ring -4\n  from \"mem://a\" decode json\n}"},
	{"bad buffer kind", 3, "connector mem \"mem://\"\nrecord r {\n  buffer pile 4\n  from \"mem://a\" decode json\n}"},
	{"expr syntax", 4, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\npipeline p { from r\n  filter `temp >>> 1`\n  to \"mem://b\" encode json }"},
	{"filter not boolean", 4, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\npipeline p { from r\n  filter `1 + 2`\n  to \"mem://b\" encode json }"},
	{"cel syntax", 4, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\npipeline p { from r\n  filter cel `a ==`\n  to \"mem://b\" encode json }"},
	{"undefined env", 1, `connector mqtt "${NO_SUCH_VAR_FOR_TEST}"`},
	{"bad env syntax", 1, `connector mqtt "${BROKEN"`},
	{"bad duration", 4, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\npipeline p { from r\n  throttle 10 per soon\n  to \"mem://b\" encode json }"},
	{"unknown input record", 3, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\npipeline p { from nosuch\n  to \"mem://b\" encode json }"},
	{"two writers", 6, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\nrecord s { from \"mem://c\" decode json }\npipeline p {\n  from r\n  into s\n}"},
	{"undeclared connector", 2, "connector mem \"mem://\"\nrecord r { from \"kafka://a\" decode json }"},
	{"bad link", 2, "connector mem \"mem://\"\nrecord r { from \"no-scheme\" decode json }"},
	{"duplicate record", 3, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\nrecord r { from \"mem://b\" decode json }"},
	{"bad template", 4, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\npipeline p { from r\n  to \"mem://b/{device\" encode json }"},
	{"stray token", 1, "connector mem \"mem://\" }"},
	{"bad window", 4, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\npipeline p { from r\n  window tumbling\n  to \"mem://b\" encode json }"},
	{"number expected", 4, "connector mem \"mem://\"\nrecord r { from \"mem://a\" decode json }\npipeline p { from r\n  batch many\n  to \"mem://b\" encode json }"},
	{"garbage bytes", 1, "\x00\xff\xfe"},
	{"unknown connector setting", 1, `connector mqtt "mqtt://127.0.0.1:1" client_idd "x"`},
	{"mqtt bad qos", 2, "connector mqtt \"mqtt://127.0.0.1:1\"\nrecord r { from \"mqtt://a\" decode json qos 7 }"},
	{"kafka without group", 2, "connector kafka \"kafka://127.0.0.1:1\"\nrecord r { from \"kafka://a\" decode json }"},
}

// TestDSLErrorsCarryPosition loads each broken snippet and checks that
// loading fails, that every reported problem renders as
// "broken.flow:LINE:COL: message" with a valid position, that one of them
// is on the expected line, and that Pretty shows the source line with a
// caret.
func TestDSLErrorsCarryPosition(t *testing.T) {
	opts := dsl.Options{Getenv: func(string) (string, bool) { return "", false }}
	for _, c := range brokenFlows {
		t.Run(c.name, func(t *testing.T) {
			_, err := dsl.Load(opts, dsl.Source{Name: "broken.flow", Src: []byte(c.src)})
			if err == nil {
				t.Fatalf("no error for:\n%s", c.src)
			}
			var list *dsl.ErrorList
			if !errors.As(err, &list) || list.Len() == 0 {
				t.Fatalf("error %T %v is not a non-empty *dsl.ErrorList", err, err)
			}
			onLine := false
			for _, e := range list.Errors {
				if e.Pos.File != "broken.flow" || e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Errorf("problem without file:line:col: %q (pos %+v)", e.Error(), e.Pos)
				}
				prefix := fmt.Sprintf("broken.flow:%d:%d: ", e.Pos.Line, e.Pos.Col)
				if !strings.HasPrefix(e.Error(), prefix) {
					t.Errorf("%q does not start with %q", e.Error(), prefix)
				}
				if e.Pos.Line == c.line {
					onLine = true
				}
			}
			if !onLine {
				t.Errorf("no problem reported on line %d:\n%s", c.line, list.Error())
			}
			t.Log(list.Error())
			if pretty := list.Pretty(); !strings.Contains(pretty, "^") {
				t.Errorf("Pretty has no caret:\n%s", pretty)
			}
		})
	}
}
