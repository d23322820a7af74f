package knx

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/knx/dpt"
	"github.com/aimdb-dev/aimdb-flow/connectors/knx/knxnet"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// In are the options of an inbound link ("knx://1/2/3", "knx://1/2/*").
type In struct {
	// DPT is the datapoint type of the group values ("9.001"). With a
	// known type the payload is a JSON object with the decoded value and
	// its unit; without one (or with a main type this connector does not
	// know) the payload is the group value's raw bytes.
	DPT string
}

// Out are the options of an outbound link ("knx://1/2/3").
type Out struct {
	// DPT is the datapoint type the record is encoded as ("9.001"): the
	// payload is a JSON value or an object with a "value" field. Without
	// one (or with an unknown main type) the payload bytes are sent as
	// the group value, as they are.
	DPT string
	// Response sends a GroupValueResponse instead of a GroupValueWrite.
	Response bool
}

// parseLinkOptions reads a link's settings (dpt; outbound also service
// write|response) and ends with validateLinkOptions.
func parseLinkOptions(dir pipeline.Direction, address string, p pipeline.Params) (any, error) {
	s := kit.ReadLink(dir, p)
	var opts any
	if dir == pipeline.Inbound {
		opts = In{DPT: s.String("dpt", "")}
	} else {
		o := Out{DPT: s.String("dpt", "")}
		o.Response = s.Enum("service", "write", "write", "response") == "response"
		opts = o
	}
	for _, e := range pipeline.SplitErrors(validateLinkOptions(dir, address, opts)) {
		s.Fail(e)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return opts, nil
}

// validateLinkOptions checks typed link options (In or Out, or pointers
// to them) and the link address, as parseLinkOptions does for settings.
func validateLinkOptions(dir pipeline.Direction, address string, opts any) error {
	var errs kit.Errors
	var id string
	if dir == pipeline.Inbound {
		switch v := opts.(type) {
		case nil:
		case In:
			id = v.DPT
		case *In:
			if v == nil {
				return errors.New("inbound link options: nil *knx.In")
			}
			id = v.DPT
		default:
			return fmt.Errorf("inbound link options are %T, want knx.In", opts)
		}
		if _, err := knxnet.ParsePattern(address); err != nil {
			errs = append(errs, fmt.Errorf("knx link: %w", err))
		}
	} else {
		switch v := opts.(type) {
		case nil:
		case Out:
			id = v.DPT
		case *Out:
			if v == nil {
				return errors.New("outbound link options: nil *knx.Out")
			}
			id = v.DPT
		default:
			return fmt.Errorf("outbound link options are %T, want knx.Out", opts)
		}
		if !strings.Contains(address, "{") { // a template is checked per record
			if _, _, err := knxnet.ParseGroupAddress(address); err != nil {
				errs = append(errs, fmt.Errorf("knx destination: %w", err))
			}
		}
	}
	if id != "" {
		if _, _, err := dpt.Lookup(id); err != nil {
			errs = append(errs, &kit.Error{Key: "dpt", Value: id, Err: errors.New("want a datapoint type such as 1.001, 9.001 or 16.000")})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// codecFor returns the datapoint type of a link, and false for raw
// bytes.
func codecFor(id string) (dpt.Type, bool) {
	if id == "" {
		return dpt.Type{}, false
	}
	t, ok, err := dpt.Lookup(id)
	return t, ok && err == nil
}
