package stages

import (
	"context"
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

type split struct {
	list func(env *pipeline.Envelope) (any, error)
}

// Split returns a stage emitting one record per element of a list: the
// list list returns (nil list: the value itself, which must then be a
// list, such as a batch or window produces). Each output's value is the
// element; topic, key, headers, time and ack are the input's. An empty
// list emits nothing (the input is acknowledged); a value that is not a
// list is a stage error.
func Split(list func(env *pipeline.Envelope) (any, error)) pipeline.Processor {
	return split{list}
}

func (split) Kind() string { return "split" }

func (s split) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	v := pipeline.Plain(env.Value)
	if s.list != nil {
		var err error
		if v, err = s.list(env); err != nil {
			return err
		}
	}
	items, ok := v.([]any)
	if !ok {
		return fmt.Errorf("split: value is %T, want a list", v)
	}
	for _, it := range items {
		out := *env
		out.Value, out.Payload = it, nil
		if err := next(ctx, &out); err != nil {
			return err
		}
	}
	return nil
}
