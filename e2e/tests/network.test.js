// The network as a person sees it: tabs of one room follow each other, pay each other, fork and
// reorg, survive a reload, ignore a rogue client, and rooms stay apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  BASE, attr, balance, balances, height, launch, openNode, sameTip, screenshot, setMining, text, tipHash,
  uniqueRoom, vectors, waitFor,
} from './lib.js';

/** Opens `count` tabs on `room` and waits until each sees all the others. */
async function openTabs(context, room, count) {
  const pages = [];
  for (let i = 0; i < count; i += 1) pages.push(await openNode(context, room));
  for (const page of pages) {
    await waitFor(page, async () => (await peerCount(page)) === count - 1, `${count - 1} peers each`);
  }
  return pages;
}

async function mineBlocks(page, count) {
  const start = await height(page);
  await setMining(page, true);
  await waitFor(page, async () => (await height(page)) >= start + count, `${count} blocks mined`, 120_000);
  await setMining(page, false);
}

async function peerCount(page) {
  const value = parseInt((await text(page, 'peer-count')).replace(/[^0-9]/g, ''), 10);
  return Number.isNaN(value) ? 0 : value;
}

async function work(page) {
  return BigInt(`0x${(await attr(page, 'tip-hash', 'data-work')) || '0'}`);
}

test('a block mined in one tab reaches the other two, and all show the same tip', async () => {
  const context = await launch();
  try {
    const room = uniqueRoom('three');
    const pages = await openTabs(context, room, 3);
    await mineBlocks(pages[0], 2);
    const tip = await sameTip(pages, 'the same tip in all three tabs');
    assert.match(tip, /^[0-9a-f]{64}$/);
    assert.ok((await height(pages[1])) >= 2, 'the others show the mined height');
    await screenshot(pages[1], 'three-tabs-follower');
  } finally {
    await context.close();
  }
});

test('tab A pays tab B; after a block all three tabs agree on the balances', async () => {
  const context = await launch();
  try {
    const room = uniqueRoom('pay');
    const [a, b, c] = await openTabs(context, room, 3);
    await mineBlocks(a, 1);
    await sameTip([a, b, c], 'B and C follow A');
    const before = await balance(a);
    assert.ok(before > 0, `A earned coins by mining (${before})`);
    const bAddress = await attr(b, 'node-address', 'data-address');
    assert.match(bAddress ?? '', /^[0-9a-f]{40}$/);

    await a.getByTestId('send-to').fill(bAddress);
    await a.getByTestId('send-amount').fill('7');
    await a.getByTestId('send-fee').fill('1');
    await a.getByTestId('send-button').click();
    await waitFor(a, async () => (await text(a, 'tx-list')).toLowerCase().includes('pending'), 'the payment is pending');
    await waitFor(c, async () => (await text(c, 'event-log')).toLowerCase().includes('transaction'), 'C heard of the payment', 30_000);

    await mineBlocks(c, 1);
    await sameTip([a, b, c], 'everyone on the block with the payment');
    await waitFor(a, async () => (await text(a, 'tx-list')).toLowerCase().includes('confirmed'), 'the payment shows confirmed');
    await waitFor(b, async () => (await balance(b)) === 7, 'B holds the 7 coins');
    // The same ledger in every tab: each tab's table lists every account with its coins.
    const tables = await Promise.all([a, b, c].map(balances));
    assert.ok(tables[0].includes(`${bAddress}=7`), `A's table shows B's 7 coins: ${tables[0]}`);
    assert.deepEqual(tables[1], tables[0], 'A and B show the same balances');
    assert.deepEqual(tables[2], tables[0], 'B and C show the same balances');
    assert.equal(await balance(a), before - 8, 'A paid 7 plus a fee of 1');
    await screenshot(a, 'wallet-after-payment');
  } finally {
    await context.close();
  }
});

test('a tab that goes offline and mines alone joins the heavier branch when it returns', async () => {
  const context = await launch();
  try {
    const room = uniqueRoom('fork');
    const [a, b, c] = await openTabs(context, room, 3);
    await mineBlocks(a, 3);
    await sameTip([a, b, c], 'a shared start');

    await c.getByTestId('go-offline').click();
    await waitFor(c, async () => (await attr(c, 'status-connection', 'data-state')) === 'offline', 'C offline');
    await mineBlocks(c, 1);
    const cTip = await tipHash(c);
    // A mines until its branch clearly has more work than C's.
    const cWork = await work(c);
    await setMining(a, true);
    await waitFor(a, async () => (await work(a)) > cWork * 2n, 'A has clearly more work than C', 120_000);
    await setMining(a, false);
    await sameTip([a, b], 'B follows A');
    assert.notEqual(await tipHash(a), cTip, 'the two sides forked');

    await c.getByTestId('go-offline').click();
    const final = await sameTip([a, b, c], 'all three on the heavier branch');
    assert.notEqual(final, cTip, 'C left its lighter branch');
    await waitFor(c, async () => (await c.getByTestId('reorg-marker').count()) > 0
      || (await text(c, 'event-log')).toLowerCase().includes('reorg'), 'C shows the reorg');
    await screenshot(c, 'reorg');
  } finally {
    await context.close();
  }
});

test('a reload restores the chain from IndexedDB without a full resync', async () => {
  const context = await launch();
  try {
    const room = uniqueRoom('reload');
    const solo = await openNode(context, room);
    await mineBlocks(solo, 3);
    // Writes to IndexedDB are batched: wait until the tab says everything is saved and the tip
    // holds still (a block found just before the stop may still arrive).
    let tip = '';
    await waitFor(solo, async () => {
      const seen = await tipHash(solo);
      await solo.waitForTimeout(400);
      const saved = (await attr(solo, 'status-saved', 'data-unsaved')) === '0';
      const same = seen === (await tipHash(solo));
      tip = seen;
      return saved && same;
    }, 'everything saved');
    const before = await height(solo);
    // Alone in the room: nobody could resend the chain, so it can only come from storage.
    await solo.reload();
    await waitFor(solo, async () => (await tipHash(solo)) === tip, 'the same tip after reload', 30_000);
    assert.equal(await height(solo), before);
    assert.equal(await peerCount(solo), 0, 'no peer could have resent it');
  } finally {
    await context.close();
  }
});

test('a rogue client sending invalid blocks and garbage changes no chain and is shown as misbehaving', async () => {
  const context = await launch();
  let rogue;
  try {
    const room = uniqueRoom('rogue');
    const [a, b] = [await openNode(context, room), await openNode(context, room)];
    await mineBlocks(a, 2);
    const tip = await sameTip([a, b], 'a shared chain');
    const classroom = vectors().networks.find((network) => network.name === 'tabchain-classroom');
    assert.ok(classroom, 'the vectors know the classroom network');

    rogue = new WebSocket(`${BASE.replace('http', 'ws')}/ws/${room}`);
    await new Promise((resolve, reject) => { rogue.once('open', resolve); rogue.once('error', reject); });
    const broadcast = (payload) => rogue.send(JSON.stringify({ type: 'broadcast', payload }));
    broadcast({
      type: 'hello', protocol_version: 2, chain_id: classroom.chain_id, genesis_hash: classroom.genesis_hash,
      name: 'rogue', address: '00'.repeat(20), tip: { hash: tip, height: 1, total_work: '1' },
    });
    const zero = '00'.repeat(32);
    broadcast({
      type: 'new_block',
      block: {
        header: { version: 2, height: 1, prev_hash: classroom.genesis_hash, tx_root: zero, timestamp_ms: Date.now(), target: 1, nonce: 0 },
        coinbase: { height: 1, to: '00'.repeat(20), amount: 1000000 },
        transactions: [],
      },
    });
    for (const garbage of ['{"type":"warp_drive"}', '{"type":"status","tip":"nope"}', '[1,2,3]', '"hello"']) {
      rogue.send(JSON.stringify({ type: 'broadcast', payload: JSON.parse(garbage) }));
    }
    for (const page of [a, b]) {
      const badge = page.locator('[data-testid="peer-row"][data-peer-name="rogue"] [data-testid="peer-misbehaving"]');
      await waitFor(page, async () => (await badge.count()) > 0, 'the rogue shown as misbehaving');
      assert.equal(await tipHash(page), tip, 'the chain did not change');
    }
    await screenshot(a, 'rogue-peer');
  } finally {
    rogue?.close();
    await context.close();
  }
});

test('two rooms do not see each other', async () => {
  const context = await launch();
  try {
    const [red1, red2] = [await openNode(context, uniqueRoom('red')), null];
    const blueRoom = uniqueRoom('blue');
    const blue1 = await openNode(context, blueRoom);
    const blue2 = await openNode(context, blueRoom);
    await waitFor(blue1, async () => (await peerCount(blue1)) === 1, 'the blue tabs see each other');
    await mineBlocks(blue1, 2);
    await sameTip([blue1, blue2], 'blue tabs agree');
    assert.equal(await peerCount(red1), 0, 'the red tab sees nobody');
    assert.equal(await height(red1), 0, 'the red tab did not get blue blocks');
    assert.equal(red2, null);
  } finally {
    await context.close();
  }
});
