// The Node baseline for the relay's load benchmark: the smallest useful broadcast server built
// on the `ws` package. Rooms by URL path; every message goes verbatim to the other members.
// No envelope, no limits, no presence: it shows what forwarding alone costs in Node.
// Usage: node ws-baseline.js [port]   (listens on 127.0.0.1 only)
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 3040);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 1 << 20,
});
const rooms = new Map();

wss.on('connection', (socket, request) => {
  socket._socket.setNoDelay(true);
  const name = request.url;
  let members = rooms.get(name);
  if (!members) {
    members = new Set();
    rooms.set(name, members);
  }
  members.add(socket);
  socket.on('message', (data, isBinary) => {
    for (const other of members) {
      if (other !== socket && other.readyState === 1) {
        other.send(data, { binary: isBinary });
      }
    }
  });
  socket.on('close', () => {
    members.delete(socket);
    if (members.size === 0) rooms.delete(name);
  });
  socket.on('error', () => {});
});

wss.on('listening', () => console.log(`ws baseline listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
