package stages

import (
	"context"
	"log/slog"
	"unicode/utf8"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Log returns a stage that logs every record at Info level (message msg,
// with the pipeline name, the topic and the value as JSON text) and passes
// it on unchanged. A record without a decoded value logs its payload (as
// text when it is UTF-8, else its size). It costs nothing when the logger
// does not log Info. It is the DSL's `log "message"` statement.
func Log(logger *slog.Logger, pipelineName, msg string) pipeline.Processor {
	if logger == nil {
		logger = slog.Default()
	}
	return logStage{log: logger, pipeline: pipelineName, msg: msg}
}

type logStage struct {
	log           *slog.Logger
	pipeline, msg string
}

func (logStage) Kind() string { return "log" }

// PreservesValue implements pipeline.ValuePreserver.
func (logStage) PreservesValue() bool { return true }

func (l logStage) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	if l.log.Enabled(ctx, slog.LevelInfo) {
		l.log.LogAttrs(ctx, slog.LevelInfo, l.msg, slog.String("pipeline", l.pipeline), slog.String("topic", env.Topic), l.value(env))
	}
	return next(ctx, env)
}

// value renders the record for the log line: its value as JSON, else its
// payload.
func (l logStage) value(env *pipeline.Envelope) slog.Attr {
	if env.Value != nil {
		if b, err := (codec.JSON{}).Encode(env.Value); err == nil {
			return slog.String("value", string(b))
		}
		return slog.Any("value", env.Value)
	}
	if utf8.Valid(env.Payload) {
		return slog.String("payload", string(env.Payload))
	}
	return slog.Int("payload_bytes", len(env.Payload))
}
