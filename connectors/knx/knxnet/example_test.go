package knxnet_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx/knxnet"
)

// A tunnel is driven by datagrams and time; it answers with datagrams to
// send and events.
func ExampleTunnel() {
	me := knxnet.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:50000")}
	tn := knxnet.NewTunnel(knxnet.TunnelConfig{Control: me, Data: me})
	now := time.Now()
	tn.Connect(now)
	out, _ := tn.Output()
	fmt.Printf("send % x\n", out[0])

	// The gateway accepts: channel 1, individual address 1.1.5.
	resp := knxnet.Frame{Service: knxnet.ConnectResponse, Channel: 1, Address: 0x1105, Data: me}
	tn.Handle(now, resp.Encode(nil))
	_, evs := tn.Output()
	fmt.Println(evs[0].Kind, evs[0].Channel, evs[0].Address)

	// A switch telegram from the bus is acknowledged and reported.
	ga, _, _ := knxnet.ParseGroupAddress("1/2/3")
	l := knxnet.LData{Code: knxnet.LDataInd, Source: 0x1101, Dest: ga, Group: true,
		APCI: knxnet.GroupValueWrite, Short: true, Data: []byte{1}}
	cemi, _ := l.Encode(nil)
	tn.Handle(now, knxnet.Frame{Service: knxnet.TunnellingRequest, Channel: 1, Seq: 0, CEMI: cemi}.Encode(nil))
	out, evs = tn.Output()
	fmt.Printf("send % x\n", out[0])
	fmt.Println(evs[0].Kind, evs[0].Frame.APCI, evs[0].Frame.Dest, evs[0].Frame.Source, evs[0].Frame.Data)

	// Hostile input is rejected with a reason.
	tn.Handle(now, []byte{0x06, 0x10, 0x04, 0x20, 0x00, 0xff})
	_, evs = tn.Output()
	fmt.Println(evs[0].Kind, knxnet.ReasonOf(evs[0].Err))
	// Output:
	// send 06 10 02 05 00 1a 08 01 7f 00 00 01 c3 50 08 01 7f 00 00 01 c3 50 04 04 02 00
	// connected 1 1.1.5
	// send 06 10 04 21 00 0a 04 01 00 00
	// indication write 1/2/3 1.1.1 [1]
	// rejected wrong length
}
