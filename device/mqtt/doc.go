// Package mqtt is an MQTT client for devices: MQTT 3.1.1, or the subset of
// MQTT 5 a device needs (one wire version per client, Config.Version),
// over any io.ReadWriter the board's network driver provides (a TCP
// socket of a Wi-Fi or cellular module, a serial bridge; on a host a
// net.Conn).
//
// It does CONNECT (client id, username/password, keep-alive, clean start,
// a will; MQTT 5 session expiry and maximum packet size), PUBLISH at QoS 0
// and QoS 1 (packet identifiers, a bounded window of in-flight messages,
// retransmission with DUP until PUBACK, resent after every reconnect),
// SUBSCRIBE to fixed topic filters (QoS 0/1) with inbound messages handed
// to handlers and acknowledged after them, PINGREQ/PINGRESP keep-alive
// and DISCONNECT. Not supported: QoS 2, UNSUBSCRIBE, topic aliases, AUTH
// exchanges, outbound MQTT 5 properties other than the CONNECT limits.
//
// The protocol engine is split from I/O: the codec (AppendConnect,
// AppendPublish, ..., PacketLen, Packet.Decode) is pure, byte slices in
// and out, and never panics on hostile input; Client drives it over the
// transport from the device main loop:
//
//	c, err := mqtt.New(mqtt.Config{ClientID: "d-1", KeepAlive: 30 * time.Second,
//		Subscriptions: []mqtt.Subscription{{Topic: "devices/d-1/setpoint", QoS: mqtt.QoS1, Handler: h}}})
//	err = c.Connect(conn, time.Now())         // CONNECT, CONNACK, SUBSCRIBE, SUBACK
//	for {
//		c.Publish(topic, payload, mqtt.QoS1, false)
//		if err := c.Poll(time.Now()); err != nil { // inbound packets, pings, retransmission
//			conn.Close(); conn = redial(); c.Connect(conn, time.Now()) // unacked messages are resent
//		}
//	}
//
// New allocates every buffer once (2 + MaxInflight buffers of MaxPacket
// bytes); publishing, receiving, acknowledging and pinging allocate
// nothing. The package builds under TinyGo and imports no networking,
// reflection-based encoding, logging or formatting packages. Sink and
// RecordSource connect a client to device/flow pipelines.
package mqtt
