// A scripted peer that serves a pre-made chain (from `cargo run -p web --example long_chain`)
// to the tabs of one room: it says hello with the chain's tip and answers get_headers,
// get_blocks and get_mempool. For the explorer's 10,000-block check.
//
//   node --experimental-websocket web/bench/serve-chain.js /tmp/chain.json ws://127.0.0.1:3030/ws/big
const fs = require('fs');
const [file, url] = process.argv.slice(2);
const chain = JSON.parse(fs.readFileSync(file, 'utf8'));
const blocks = chain.blocks;
const byHash = new Map();
const heightOf = new Map([[chain.genesis_hash, 0]]);
// Block hashes are not in the file: the tip is, and each block names its parent.
const hashes = new Array(blocks.length);
hashes[blocks.length - 1] = chain.tip.hash;
for (let i = blocks.length - 1; i > 0; i--) hashes[i - 1] = blocks[i].header.prev_hash;
blocks.forEach((block, i) => { byHash.set(hashes[i], block); heightOf.set(hashes[i], block.header.height); });

const hello = JSON.stringify({
  type: 'hello', protocol_version: 1, chain_id: chain.chain_id, genesis_hash: chain.genesis_hash,
  name: 'long-chain', address: chain.address, tip: chain.tip,
});
const ws = new WebSocket(url);
const send = (to, payload) => ws.send(`{"type":"send","to":"${to}","payload":${payload}}`);
ws.onmessage = (event) => {
  const frame = JSON.parse(event.data);
  if (frame.type === 'welcome') { frame.peers.forEach((peer) => send(peer, hello)); return; }
  if (frame.type === 'peer_joined') { send(frame.peer_id, hello); return; }
  if (frame.type !== 'message') return;
  const message = frame.payload;
  if (message.type === 'get_headers') {
    const known = message.locator.find((hash) => heightOf.has(hash));
    const start = known ? heightOf.get(known) : 0;
    const headers = blocks.slice(start, start + 500).map((block) => block.header);
    send(frame.from, JSON.stringify({ type: 'headers', headers }));
  } else if (message.type === 'get_blocks') {
    const found = message.hashes.map((hash) => byHash.get(hash)).filter(Boolean);
    send(frame.from, JSON.stringify({ type: 'blocks', blocks: found }));
  } else if (message.type === 'get_mempool') {
    send(frame.from, JSON.stringify({ type: 'mempool', txs: [] }));
  }
};
ws.onopen = () => console.log(`serving ${blocks.length} blocks at ${url}`);
ws.onerror = (error) => console.error('socket error', error.message || error);
