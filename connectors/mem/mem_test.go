package mem_test

import (
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func TestFactory(t *testing.T) {
	tests := []struct {
		p       pipeline.Params
		wantErr string
	}{
		{nil, ""},
		{pipeline.Params{"size": "3"}, "size: unknown setting (none are accepted here)"},
	}
	for _, tc := range tests {
		b, err := mem.Factory("mem://", tc.p)
		switch {
		case tc.wantErr == "" && (err != nil || b.Scheme() != "mem"):
			t.Errorf("%v: %v, %v", tc.p, b, err)
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("%v: err %v, want %q", tc.p, err, tc.wantErr)
		}
	}
}
