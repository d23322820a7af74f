package opcua_test

import (
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/opcua"
	"github.com/aimdb-dev/aimdb-flow/tests/flowrun"
)

// A .flow pipeline through the runner against node-opcua-server: a
// temperature above 80 set on the server switches Machine/On off, by a
// write the pipeline makes.
func TestFlowAgainstServer(t *testing.T) {
	srv := opcua.StartServer(t)
	src := `connector plc "` + srv.URL() + `"
record temp {
  from "plc://ns=2;s=Machine/Temp" decode json initial_value skip publishing_interval 50ms
}
pipeline overheat {
  from temp
  filter ` + "`value > 80.0`" + `
  map ` + "`" + `{"value": false}` + "`" + `
  to "plc://ns=2;s=Machine/On" encode json
}
`
	flowrun.Start(t, src, 30*time.Second)
	srv.Set("Machine/On", "Boolean", true, "")
	srv.WaitWrite("Machine/On=true")
	srv.Set("Machine/Temp", "Double", 85.5, "")
	srv.WaitWrite("Machine/On=false")
}
