// A client of the records API's WebSocket endpoint for the tests, on the
// npm `ws` library (a peer no one here wrote).
//
//   node wsclient.js URL TOKEN N [SET_JSON]
//
// Opens URL offering the subprotocols aimdb-flow.v1 and bearer.TOKEN
// (TOKEN "-" for none), prints the negotiated subprotocol, sends SET_JSON
// (a client message) once the hello arrived, prints the first N messages
// it receives, one per line, and closes.
'use strict';
const { WebSocket } = require('ws');
const [url, token, n, set] = process.argv.slice(2);
const protos = ['aimdb-flow.v1'];
if (token && token !== '-') protos.push('bearer.' + token);
const ws = new WebSocket(url, protos);
let left = Number(n);
ws.on('open', () => console.log(JSON.stringify({ protocol: ws.protocol })));
ws.on('message', (data) => {
  const text = data.toString();
  console.log(text);
  if (set && JSON.parse(text).type === 'hello') ws.send(set);
  if (--left <= 0) ws.close(1000);
});
ws.on('unexpected-response', (req, res) => { console.log(JSON.stringify({ status: res.statusCode })); process.exit(0); });
ws.on('error', (e) => { console.error(e.message); process.exit(1); });
ws.on('close', () => process.exit(0));
