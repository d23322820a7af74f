package pipeline

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// DeadLetter is what the dead-letter destination receives for a record that
// could not be processed: where it failed, why, and the original message.
type DeadLetter struct {
	Pipeline string    `json:"pipeline,omitempty"`
	Stage    string    `json:"stage"`
	Record   string    `json:"record,omitempty"`
	Link     string    `json:"link,omitempty"`
	Error    string    `json:"error"`
	Topic    string    `json:"topic,omitempty"`
	Key      string    `json:"key,omitempty"`
	Time     time.Time `json:"time"`
	// Payload is the original payload when it is valid UTF-8;
	// PayloadBase64 carries it otherwise.
	Payload       string `json:"payload,omitempty"`
	PayloadBase64 []byte `json:"payload_base64,omitempty"`
	// PayloadSize is the original payload's size in bytes; when it is
	// larger than what the dead letter keeps, PayloadTruncated is set and
	// Payload (or PayloadBase64) holds only its first bytes.
	PayloadSize      int               `json:"payload_size"`
	PayloadTruncated bool              `json:"payload_truncated,omitempty"`
	Headers          map[string]string `json:"headers,omitempty"`
}

// DefaultDeadLetterPayload is how many bytes of the original payload a dead
// letter keeps when RunOptions.DeadLetterPayload is zero.
const DefaultDeadLetterPayload = 1024

// MaxErrorText bounds the error text of a dead letter and of the runner's
// log lines: a hostile payload (a 10 MB number) must not become a 10 MB
// line.
const MaxErrorText = 200

// ErrorText is err's message cut to MaxErrorText bytes (at a UTF-8
// boundary), with the full length noted when it was cut.
func ErrorText(err error) string {
	if err == nil {
		return ""
	}
	return capText(err.Error(), MaxErrorText)
}

func capText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// NewDeadLetter fills a DeadLetter from the failing envelope, keeping at
// most DefaultDeadLetterPayload bytes of its payload and MaxErrorText bytes
// of the error.
func NewDeadLetter(env *Envelope, pipeline, stage, record, link string, err error) DeadLetter {
	return newDeadLetter(env, pipeline, stage, record, link, err, DefaultDeadLetterPayload)
}

// newDeadLetter keeps at most keep bytes of the payload (negative: all).
func newDeadLetter(env *Envelope, pipeline, stage, record, link string, err error, keep int) DeadLetter {
	dl := DeadLetter{Pipeline: pipeline, Stage: stage, Record: record, Link: link,
		Topic: env.Topic, Key: capText(string(env.Key), DefaultDeadLetterPayload), Time: time.Now().UTC(), PayloadSize: len(env.Payload)}
	dl.Error = ErrorText(err)
	payload := env.Payload
	if keep >= 0 && len(payload) > keep {
		// A text payload is cut at a rune boundary (at most
		// utf8.UTFMax-1 bytes before keep) so that it stays valid UTF-8;
		// any other payload (binary, kept base64) is cut at keep exactly.
		cut := keep
		if !utf8.Valid(payload[:cut]) {
			for back := 1; back < utf8.UTFMax && back < cut; back++ {
				if utf8.Valid(payload[:cut-back]) {
					cut -= back
					break
				}
			}
		}
		payload, dl.PayloadTruncated = payload[:cut], true
	}
	if utf8.Valid(payload) {
		dl.Payload = string(payload)
	} else {
		dl.PayloadBase64 = payload
	}
	if len(env.Headers) > 0 {
		dl.Headers = make(map[string]string, len(env.Headers))
		for _, h := range env.Headers {
			dl.Headers[h.Key] = h.Value
		}
	}
	return dl
}

// Marshal renders the dead letter as a JSON object. Nothing is
// HTML-escaped: an error reading "temp > 25" stays readable instead of
// becoming "temp \u003e 25".
func (d DeadLetter) Marshal() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(d) // cannot fail: only strings, bytes, ints and a time
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}
