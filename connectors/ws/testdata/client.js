// A WebSocket client for the connectors/ws tests, on the npm `ws` library.
//
//   node client.js URL [MESSAGE]...
//
// Connects, prints {"open":true} once the handshake is done, sends each
// MESSAGE as a text message, then prints every message it receives as a
// line until it is killed.
'use strict';
const { WebSocket } = require('ws');
const [url, ...msgs] = process.argv.slice(2);
const ws = new WebSocket(url);
ws.on('open', () => {
  console.log(JSON.stringify({ open: true }));
  for (const m of msgs) ws.send(m);
});
ws.on('message', (data) => console.log(data.toString()));
ws.on('error', (e) => { console.error(e.message); process.exit(1); });
ws.on('close', () => process.exit(0));
