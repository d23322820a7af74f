package kafka

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// ValidateLinkOptions implements pipeline.LinkOptionValidator. It checks a
// link's address and its typed options as given in Go
// (pipeline.Options(kafka.In{...}) on a `from`, kafka.Out{...} on a `to`),
// and it is the last step of ParseLinkOptions, so that a mistake is
// reported with the same words whichever front end made it:
//
//   - the address is a legal topic name (an outbound destination only when
//     it is static: a template is checked per record);
//   - an inbound link needs the connector's consumer group;
//   - opts is In for an inbound link and Out for an outbound one (or nil:
//     the connector's settings), and nothing else, not even a pointer to
//     them: a value of another type would be ignored and the defaults used;
//   - every field is in the range its setting accepts, and min_bytes is
//     not above max_bytes once the link inherits the connector's values.
//
// Problems with one option are *kit.Error values naming the setting
// (min_bytes, acks, ...); every problem is reported at once.
func (b *Builder) ValidateLinkOptions(dir pipeline.Direction, address string, opts any) error {
	var errs []error
	if dir == pipeline.Inbound {
		if err := validTopic(address); err != nil {
			errs = append(errs, err)
		}
		if b.cfg.Group == "" {
			errs = append(errs, errNoGroup)
		}
		switch o := opts.(type) {
		case nil:
		case In:
			errs = append(errs, checkReader(o.ReaderOptions, b.cfg.Reader)...)
		default:
			errs = append(errs, wrongOptions(dir, "kafka.In", opts))
		}
		return errors.Join(errs...)
	}
	if pipeline.MustTemplate(address).Static() {
		if err := validTopic(address); err != nil {
			errs = append(errs, err)
		}
	}
	switch o := opts.(type) {
	case nil:
	case Out:
		errs = append(errs, checkWriter(o.WriterOptions)...)
	default:
		errs = append(errs, wrongOptions(dir, "kafka.Out", opts))
	}
	return errors.Join(errs...)
}

// wrongOptions is the error for link options of a type the link ignores.
func wrongOptions(dir pipeline.Direction, want string, got any) error {
	return fmt.Errorf("%s kafka link options: want %s, got %T", dir, want, got)
}

// optErr is a problem with the option behind setting key, whose value is
// shown as value.
func optErr(key, value, format string, args ...any) error {
	return &kit.Error{Key: key, Value: value, Err: fmt.Errorf(format, args...)}
}

// checkReader checks typed fetch options o of a link whose connector's
// defaults are base.
func checkReader(o, base ReaderOptions) []error {
	var errs []error
	switch o.StartOffset {
	case StartDefault, StartFirst, StartLast:
	default:
		errs = append(errs, optErr("start_offset", strconv.Itoa(int(o.StartOffset)), "want first or last"))
	}
	sizeOK := true
	for _, f := range []struct {
		key string
		n   int
	}{{"min_bytes", o.MinBytes}, {"max_bytes", o.MaxBytes}} {
		if err := checkSize(f.key, f.n); err != nil {
			errs = append(errs, err)
			sizeOK = false
		}
	}
	if err := checkDuration("max_wait", o.MaxWait); err != nil {
		errs = append(errs, err)
	}
	if !sizeOK {
		return errs
	}
	m := o.merge(base)
	switch {
	case m.MinBytes <= m.MaxBytes:
	case o.MinBytes != 0:
		errs = append(errs, optErr("min_bytes", kit.FormatSize(int64(o.MinBytes)), "is above max_bytes (%s)", kit.FormatSize(int64(m.MaxBytes))))
	default:
		errs = append(errs, optErr("max_bytes", kit.FormatSize(int64(o.MaxBytes)), "is below min_bytes (%s)", kit.FormatSize(int64(m.MinBytes))))
	}
	return errs
}

// checkWriter checks typed producer options.
func checkWriter(o WriterOptions) []error {
	var errs []error
	switch o.Acks {
	case AcksDefault, AcksAll, AcksOne, AcksNone:
	default:
		errs = append(errs, optErr("acks", strconv.Itoa(int(o.Acks)), "want all, one or none"))
	}
	if o.Compression != "" {
		if _, err := parseCompression(o.Compression); err != nil {
			errs = append(errs, optErr("compression", o.Compression, "want none, gzip, snappy, lz4 or zstd%s",
				pipeline.DidYouMean(strings.ToLower(o.Compression), []string{"none", "gzip", "snappy", "lz4", "zstd"})))
		}
	}
	if o.BatchSize < 0 {
		errs = append(errs, optErr("batch_size", strconv.Itoa(o.BatchSize), "want a whole number of at least 0"))
	}
	if err := checkDuration("linger", o.Linger); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// checkSize checks a size option against the range its setting accepts.
func checkSize(key string, n int) error {
	switch {
	case n < 0:
		return optErr(key, strconv.Itoa(n), "must not be negative")
	case n > math.MaxInt32:
		return optErr(key, kit.FormatSize(int64(n)), "want a size of at most %s", kit.FormatSize(math.MaxInt32))
	}
	return nil
}

// checkDuration checks a duration option (not negative).
func checkDuration(key string, d time.Duration) error {
	if d < 0 {
		return optErr(key, d.String(), "must not be negative")
	}
	return nil
}
