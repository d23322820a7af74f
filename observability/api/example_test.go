package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// Serve the records API of a runner and set a settable record through it.
func Example() {
	g := pipeline.New()
	g.Record("setpoint").WithBuffer(buffer.Config{Kind: buffer.Latest}).WithSettable()
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(api.New(r, api.Options{Token: "s3cret"}))
	defer srv.Close()

	ctx := context.Background()
	c := &api.Client{BaseURL: srv.URL, Token: "s3cret"}
	if _, err := c.Set(ctx, "setpoint", json.RawMessage(`{"temp": 21.5}`)); err != nil {
		fmt.Println(err)
		return
	}
	v, _ := c.Value(ctx, "setpoint")
	fmt.Println(v.Record, string(v.Value))

	_, err = (&api.Client{BaseURL: srv.URL}).Records(ctx)
	fmt.Println(err)
	// Output:
	// setpoint {"temp":21.5}
	// missing token: send Authorization: Bearer TOKEN (HTTP 401, unauthorized)
}
