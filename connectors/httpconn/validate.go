package httpconn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// ValidateLinkOptions implements pipeline.LinkOptionValidator: links
// given typed options in Go (pipeline.Options(&httpconn.Out{...})) are
// checked as the DSL's settings are. An inbound link takes In (or *In),
// an outbound one Out (or *Out); an In's Path, when set, must be the
// link's path.
func (b *Builder) ValidateLinkOptions(dir pipeline.Direction, addr string, opts any) error {
	if dir == pipeline.Inbound {
		var o In
		switch v := opts.(type) {
		case In:
			o = v
		case *In:
			if v != nil {
				o = *v
			}
		default:
			return fmt.Errorf("inbound link options are httpconn.In, not %T", opts)
		}
		def, err := parseIn(addr, nil)
		if err != nil {
			return err
		}
		var errs []error
		if o.Path != "" && o.Path != def.Path {
			errs = append(errs, fmt.Errorf("In.Path %q is not the link's path %q (leave it empty)", o.Path, def.Path))
		}
		for _, m := range o.Methods {
			if !kit.ValidHTTPToken(m) || m != strings.ToUpper(m) {
				errs = append(errs, fmt.Errorf("In.Methods: %q is not a valid upper-case HTTP method", m))
			}
		}
		return errors.Join(errs...)
	}
	var o Out
	switch v := opts.(type) {
	case Out:
		o = v
	case *Out:
		if v != nil {
			o = *v
		}
	default:
		return fmt.Errorf("outbound link options are httpconn.Out, not %T", opts)
	}
	var errs []error
	if strings.Contains(addr, "#") {
		errs = append(errs, errors.New("destination must not contain '#'"))
	}
	if o.Method != "" && (!kit.ValidHTTPToken(o.Method) || o.Method != strings.ToUpper(o.Method)) {
		errs = append(errs, fmt.Errorf("Out.Method %q: not a valid upper-case HTTP method", o.Method))
	}
	if !kit.ValidHTTPHeaderValue(o.ContentType) {
		errs = append(errs, errors.New("Out.ContentType: invalid value (control characters)"))
	}
	for name, vs := range o.Header {
		for _, v := range vs {
			if !kit.ValidHTTPToken(name) || !kit.ValidHTTPHeaderValue(v) {
				errs = append(errs, fmt.Errorf("Out.Header %q: invalid header (a token name, a value without control characters)", name))
			}
		}
	}
	return errors.Join(errs...)
}
