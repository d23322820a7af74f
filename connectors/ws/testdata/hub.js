// A WebSocket hub for the connectors/ws tests, on the npm `ws` library.
//
//   node hub.js PORT        (0: any free port; the port is printed)
//
// Clients connect to any path. A text message {"subscribe": X} is answered
// with {"subscribed": X} on that connection; any other message is sent to
// every client connected to the same path (the sender too), as the same
// message type. Every message received is also logged on stdout as a JSON
// line {"path", "data", "binary"} so tests can check what arrived. With
// WS_TOKEN set, a handshake without "Authorization: Bearer $WS_TOKEN" is
// refused with 401. Connecting to /big sends one message of BIG bytes
// (default 2 MiB). Binds 127.0.0.1 only.
'use strict';
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 0);
const token = process.env.WS_TOKEN || '';
const server = http.createServer((req, res) => { res.writeHead(426); res.end(); });
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 20 });
const byPath = new Map();

server.on('upgrade', (req, socket, head) => {
  if (token && req.headers['authorization'] !== 'Bearer ' + token) {
    socket.write('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws, req) => {
  const path = req.url;
  if (!byPath.has(path)) byPath.set(path, new Set());
  const peers = byPath.get(path);
  peers.add(ws);
  ws.on('close', () => peers.delete(ws));
  if (path === '/big') {
    ws.send(Buffer.alloc(Number(process.env.BIG || (2 << 20)), 0x61).toString());
  }
  ws.on('message', (data, isBinary) => {
    const text = data.toString();
    console.log(JSON.stringify({ path, data: isBinary ? data.toString('base64') : text, binary: isBinary }));
    if (!isBinary) {
      try {
        const m = JSON.parse(text);
        if (m && typeof m === 'object' && 'subscribe' in m && Object.keys(m).length === 1) {
          ws.send(JSON.stringify({ subscribed: m.subscribe }));
          return;
        }
      } catch (e) { /* not JSON: relay it */ }
    }
    for (const p of peers) {
      if (p.readyState === WebSocket.OPEN) p.send(data, { binary: isBinary });
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
