// Package mqtt is the MQTT 5 connector, built on
// github.com/eclipse/paho.golang (autopaho). One connector owns one client
// connection to a broker: it reconnects in the background with exponential
// backoff and jitter, re-subscribes after every reconnect, and reports
// readiness from the connection state.
//
// Inbound links ("mqtt://sensors/+/temp") are subscriptions: wildcards and
// MQTT 5 shared subscriptions ("$share/GROUP/topic", or the share link
// option) are honoured; user properties become envelope headers. At QoS 1
// and 2 each message is acknowledged to the broker only after every sink it
// reached has acknowledged it (manual acks), so a crash or a rejected
// record leads to redelivery instead of loss.
//
// Outbound links ("mqtt://alerts/{device}") publish each record at QoS 0, 1
// or 2, optionally retained, with headers as user properties. While the
// connection is down, records wait in a bounded offline queue with a stated
// overflow policy (block or drop-oldest, counted); a publish never waits
// longer than its context or the publish timeout.
//
// Three schemes are provided: "mqtt" (plain TCP), "mqtts" (TLS) and
// "embedded" (an in-process MQTT 5 broker, mochi-mqtt, started on a free
// loopback port; the connector talks to it like to any broker).
package mqtt
