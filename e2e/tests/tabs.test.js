// Tabs of one browser with no relay at all: the page served by a plain static server (as
// `trunk serve` serves it when no relay runs), so every WebSocket to /ws fails. The tabs find each
// other over the tab channel (a BroadcastChannel), mine, pay and converge, and say where they
// reach: "this browser only (no server)". A third tab with ?local=off stays alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import {
  attr, height, launch, sameTip, screenshot, setMining, text, uniqueRoom, waitFor,
} from './lib.js';

const DIST = process.env.E2E_STATIC_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };

/** A static file server and nothing else: a WebSocket upgrade gets its socket closed. */
async function staticServer() {
  const server = createServer(async (request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url, 'http://x').pathname));
    const file = join(DIST, path === '/' ? 'index.html' : path);
    try {
      const body = await readFile(file.startsWith(DIST) ? file : join(DIST, 'index.html'));
      response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  server.on('upgrade', (_request, socket) => socket.destroy());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function openAlone(context, base, room, extra = '') {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  await page.goto(`${base}/?room=${room}&net=classroom${extra}`);
  await waitFor(page, async () => (await text(page, 'status-height')) !== '', 'the node started');
  return page;
}

test('tabs of one browser with no server mine, pay each other and converge', async () => {
  const server = await staticServer();
  const base = `http://127.0.0.1:${server.address().port}`;
  const context = await launch();
  try {
    const room = uniqueRoom('tabs');
    const a = await openAlone(context, base, room);
    const b = await openAlone(context, base, room);
    for (const page of [a, b]) {
      await waitFor(page, async () => (await attr(page, 'status-connection', 'data-same-browser')) === '1'
        && (await page.getByTestId('peer-row').count()) === 1,
      'each tab links to the other over the channel and lists it');
      const status = await text(page, 'status-connection');
      assert.match(status, /^this browser only \(no server\)/, status);
      assert.notEqual(await attr(page, 'status-connection', 'data-state'), 'connected');
      // The compare table names the link as what it is (issue 28: it said "direct").
      await waitFor(page, async () => (await attr(page, 'peer-link', 'data-same-browser')) === 'true', 'the link marked as this browser');
      assert.equal(await text(page, 'peer-link'), 'this browser');
    }
    // A tab kept off the channel reaches nobody: the relay is the only other way, and it is not there.
    const loner = await openAlone(context, base, room, '&local=off');

    await setMining(a, true);
    await waitFor(a, async () => (await height(a)) >= 2, 'A mined two blocks', 120_000);
    await setMining(a, false);
    await sameTip([a, b], 'B follows A with no server');

    const bAddress = await attr(b, 'node-address', 'data-address');
    await a.getByTestId('send-to').fill(bAddress);
    await a.getByTestId('send-amount').fill('5');
    await a.getByTestId('send-fee').fill('1');
    await a.getByTestId('send-button').click();
    await waitFor(a, async () => (await attr(a, 'send-result', 'data-ok')) === 'true', 'the payment is made');
    // B mines it: the payment reached B over the channel.
    await waitFor(b, async () => (await b.getByTestId('rx-item').count()) === 1, 'B lists the payment', 30_000);
    const received = b.getByTestId('rx-item').first();
    assert.equal(await received.getAttribute('data-amount'), '5');
    await setMining(b, true);
    await waitFor(b, async () => (await received.getAttribute('data-state')) === 'confirmed',
      'B mined the payment to itself', 120_000);
    await setMining(b, false);
    await sameTip([a, b], 'A follows B');
    await waitFor(a, async () => (await text(a, 'tx-list')).toLowerCase().includes('confirmed'), 'A sees its payment confirmed');
    await screenshot(a, 'tabs-no-server');

    assert.equal(await attr(loner, 'status-connection', 'data-same-browser'), '0');
    assert.equal(await loner.getByTestId('peer-row').count(), 0, 'the local=off tab met nobody');
    assert.equal(await height(loner), 0);
    assert.match(await text(loner, 'status-connection'), /server offline|connecting/);
  } finally {
    await context.close();
    server.close();
  }
});
