// Package knxnet is a small KNXnet/IP protocol engine for tunnelling
// connections, kept apart from I/O: it turns datagrams into events and
// requests into datagrams, with the time passed in, so it can be tested
// with tables and fuzzed without a network.
//
// It covers what a group-communication client needs:
//
//   - the KNXnet/IP frame header and the services of a tunnelling client
//     (CONNECT, CONNECTIONSTATE, DISCONNECT, TUNNELLING_REQUEST/ACK),
//     encoded and decoded by Encode / Decode;
//   - cEMI L_Data frames (LData) with the group services of the
//     application layer: GroupValueRead, GroupValueResponse and
//     GroupValueWrite (APCI);
//   - group addresses in three-level (1/2/3), two-level (1/515) and free
//     (4660) form, individual addresses (1.1.5), and group address
//     patterns with wildcards per level (1/2/*);
//   - Tunnel, the client state machine: connect, one outstanding
//     TUNNELLING_REQUEST with sequence counters and one retry,
//     L_Data.con matching, CONNECTIONSTATE heartbeats and DISCONNECT.
//
// Every malformed datagram is rejected with an error naming the reason
// (Reason), never a panic.
package knxnet
