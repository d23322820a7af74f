package expr

import (
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func TestCheckAgainstSchema(t *testing.T) {
	type reading struct {
		Device string  `json:"device"`
		Temp   float64 `json:"temp"`
		Seq    int     `json:"seq"`
		Tags   map[string]any
	}
	schema := pipeline.SchemaOf[reading]()
	tests := []struct {
		lang    Lang
		src     string
		want    Want
		wantErr string
	}{
		{ExprLang, `temp > 25 && seq % 2 == 0 && device startsWith "d-"`, Bool, ""},
		{ExprLang, `Tags.room == "a" || topic == "x" || key == "k" || value != nil`, Bool, ""},
		{ExprLang, `tmp > 25`, Bool, `unknown name tmp (not a field of the record's schema; did you mean "temp"?)`},
		{ExprLang, `device > 25`, Bool, `mismatched types string and int`},
		{ExprLang, `temp % 2 == 0`, Bool, `invalid operation: % (mismatched types float64 and int)`},
		{ExprLang, `device + "/x"`, Any, ""},
		{CEL, `temp > 25 && seq % 2 == 0`, Bool, ""},
		{CEL, `tmp > 25`, Bool, `undeclared reference to 'tmp'`},
		{CEL, `device > 1`, Bool, `found no matching overload`},
	}
	for _, tc := range tests {
		t.Run(tc.lang.String()+" "+tc.src, func(t *testing.T) {
			err := MustCompile(tc.lang, tc.src, tc.want).Check(schema)
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
