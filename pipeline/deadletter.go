package pipeline

import (
	"encoding/json"
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
	Payload       string            `json:"payload,omitempty"`
	PayloadBase64 []byte            `json:"payload_base64,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
}

// NewDeadLetter fills a DeadLetter from the failing envelope.
func NewDeadLetter(env *Envelope, pipeline, stage, record, link string, err error) DeadLetter {
	dl := DeadLetter{Pipeline: pipeline, Stage: stage, Record: record, Link: link,
		Topic: env.Topic, Key: string(env.Key), Time: time.Now().UTC()}
	if err != nil {
		dl.Error = err.Error()
	}
	if utf8.Valid(env.Payload) {
		dl.Payload = string(env.Payload)
	} else {
		dl.PayloadBase64 = env.Payload
	}
	if len(env.Headers) > 0 {
		dl.Headers = make(map[string]string, len(env.Headers))
		for _, h := range env.Headers {
			dl.Headers[h.Key] = h.Value
		}
	}
	return dl
}

// Marshal renders the dead letter as a JSON object.
func (d DeadLetter) Marshal() []byte {
	b, _ := json.Marshal(d) // cannot fail: only strings, bytes and a time
	return b
}
