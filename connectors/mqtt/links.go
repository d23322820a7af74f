package mqtt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// In are the options of an inbound link (a subscription).
type In struct {
	// QoS is the maximum QoS the broker delivers with (default 1). At QoS
	// 1 and 2 messages are acknowledged only after every sink finished.
	QoS byte
	// NoLocal asks the broker not to deliver messages this connection
	// published itself.
	NoLocal bool
	// Share subscribes as member of an MQTT 5 shared-subscription group:
	// the broker splits the messages among the group's members. An address
	// written as "$share/GROUP/filter" sets it too.
	Share string
	// RetainAsPublished keeps the retain flag of forwarded messages.
	RetainAsPublished bool
}

// Out are the options of an outbound link.
type Out struct {
	// QoS of the published messages (default 1).
	QoS byte
	// Retain asks the broker to keep the last message of each topic.
	Retain bool
	// ContentType sets the MQTT 5 content type (default: the envelope's
	// "content-type" header, in any case, if any).
	ContentType string
	// MessageExpiry asks the broker to discard the message if it could not
	// be delivered within this time (0: never).
	MessageExpiry time.Duration
}

// HeaderContentType is the envelope header that carries the MQTT 5
// content type of inbound messages, and sets it for outbound ones when the
// link has no content_type option (matched in any case, see
// kit.IsContentType).
const HeaderContentType = kit.ContentTypeHeader

// maxQoS is the highest MQTT QoS level.
const maxQoS = 2

// parseLinkOptions reads a link's settings with the shared reader
// (kit.ReadLink) and ends with validateLinkOptions, the checks typed Go
// options get too. Inbound links take qos, no_local, share (or group) and
// retain_as_published; outbound links take qos, retain, content_type and
// message_expiry. Every mistake is reported at once.
func parseLinkOptions(dir pipeline.Direction, address string, p pipeline.Params) (any, error) {
	s := kit.ReadLink(dir, p)
	// A range, not a choice: a choice would answer qos 3 with
	// "did you mean 0?".
	qos := byte(s.Int("qos", 1, 0, maxQoS))
	var opts any
	if dir == pipeline.Inbound {
		o := In{QoS: qos}
		o.NoLocal = s.Bool("no_local", false)
		s.Alias("share", "group")
		if s.Has("share") {
			if o.Share = s.String("share", ""); o.Share == "" {
				s.Errorf("share", "%s", errGroupName)
			}
		}
		o.RetainAsPublished = s.Bool("retain_as_published", false)
		opts = o
	} else {
		o := Out{QoS: qos}
		o.Retain = s.Bool("retain", false)
		o.ContentType = s.String("content_type", "")
		o.MessageExpiry = s.Duration("message_expiry", 0)
		opts = o
	}
	for _, e := range pipeline.SplitErrors(validateLinkOptions(dir, address, opts)) {
		// Name the setting as written (group for share).
		var ke *kit.Error
		if errors.As(e, &ke) && ke.Key == "share" {
			if _, ok := p["share"]; !ok {
				if _, ok := p["group"]; ok {
					ke.Key = "group"
				}
			}
		}
		s.Fail(e)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return opts, nil
}

// errGroupName is the problem with a shared-subscription group name.
const errGroupName = "not a valid group name (want a non-empty name without /, + or #)"

// validateLinkOptions checks typed link options (In for inbound
// links, Out for outbound ones, or pointers to them): what
// parseLinkOptions checks after reading the settings, so that typed Go
// options and DSL settings are refused with the same errors. Problems with
// one option are *kit.Error values naming the setting.
func validateLinkOptions(dir pipeline.Direction, address string, opts any) error {
	var errs kit.Errors
	bad := func(key, value, format string, args ...any) {
		errs = append(errs, &kit.Error{Key: key, Value: value, Err: fmt.Errorf(format, args...)})
	}
	if dir == pipeline.Inbound {
		var o In
		switch v := opts.(type) {
		case In:
			o = v
		case *In:
			if v == nil {
				return errors.New("inbound link options: nil *mqtt.In")
			}
			o = *v
		default:
			return fmt.Errorf("inbound link options are %T, want mqtt.In", opts)
		}
		if o.QoS > maxQoS {
			bad("qos", strconv.Itoa(int(o.QoS)), "want a whole number from 0 to %d", maxQoS)
		}
		if o.Share != "" && strings.ContainsAny(o.Share, "/+#") {
			bad("share", o.Share, "%s", errGroupName)
		}
		if rest, ok := strings.CutPrefix(address, "$share/"); ok {
			g, filter, ok := strings.Cut(rest, "/")
			switch {
			case !ok || g == "" || filter == "" || strings.ContainsAny(g, "+#"):
				errs = append(errs, fmt.Errorf("shared subscription %q: want $share/GROUP/filter", address))
			case o.Share != "" && o.Share != g:
				bad("share", o.Share, "conflicts with the group of address %q", address)
			}
		}
	} else {
		var o Out
		switch v := opts.(type) {
		case Out:
			o = v
		case *Out:
			if v == nil {
				return errors.New("outbound link options: nil *mqtt.Out")
			}
			o = *v
		default:
			return fmt.Errorf("outbound link options are %T, want mqtt.Out", opts)
		}
		if o.QoS > maxQoS {
			bad("qos", strconv.Itoa(int(o.QoS)), "want a whole number from 0 to %d", maxQoS)
		}
		if o.MessageExpiry < 0 {
			bad("message_expiry", o.MessageExpiry.String(), "must not be negative")
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// checkDestination refuses, per record, a rendered destination that is
// not a valid MQTT topic name (a template filled with "+" or "#", an empty
// topic): the broker would close the connection. Static destinations are
// checked at load (pipeline.Caps.Topics).
func checkDestination(dest string) error {
	if dest == "" || strings.ContainsAny(dest, "+#\x00") {
		return &RejectedError{Topic: dest, Err: errors.New("not a valid topic name (empty, or with a wildcard + or #, or a NUL)")}
	}
	return nil
}
