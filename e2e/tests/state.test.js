// What the screen says about the tab's own state must be true: offline, reconnecting, a partition
// seen from both sides (gone peers remembered, with their names), a mute lifted, a payment
// received (issue 16, "wrong or missing state").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attr, height, launch, openNode, sameTip, setMining, text, tipHash, uniqueRoom, waitFor } from './lib.js';

async function openPair(context, room, extra = '') {
  const a = await openNode(context, room, extra);
  const b = await openNode(context, room, extra);
  for (const page of [a, b]) {
    await waitFor(page, async () => (await page.getByTestId('peer-row').count()) === 1
      && (await attr(page, 'peer-row', 'data-peer-name')) !== '', 'each tab sees the other with its name');
  }
  return [a, b];
}

async function mineBlocks(page, count) {
  const start = await height(page);
  await setMining(page, true);
  await waitFor(page, async () => (await height(page)) >= start + count, `${count} blocks mined`, 120_000);
  await setMining(page, false);
}

const syncState = (page) => attr(page, 'status-sync', 'data-state');

test('an offline tab says offline and both sides of the partition keep showing each other', async () => {
  const context = await launch();
  try {
    const [a, b] = await openPair(context, uniqueRoom('offline'));
    const aName = await text(a, 'node-name');
    const bName = await text(b, 'node-name');
    await waitFor(b, async () => (await syncState(b)) === 'synced', 'B in sync');

    await b.getByTestId('go-offline').click();
    await waitFor(b, async () => (await syncState(b)) === 'offline', 'B says offline, not "in sync"');
    assert.match(await text(b, 'status-sync'), /offline/);

    // B remembers A: its row stays, marked as gone, with how long ago it was seen.
    await waitFor(b, async () => (await b.getByTestId('peer-gone').count()) === 1, "B's table keeps A");
    const gone = b.getByTestId('peer-gone').first();
    assert.equal(await gone.getAttribute('data-present'), 'false');
    assert.equal(await gone.getAttribute('data-peer-name'), aName);
    assert.match(await gone.getByTestId('peer-seen').innerText(), /seen \d+ s ago/);
    assert.ok(!(await b.locator('section', { has: b.getByTestId('peer-table') }).innerText()).includes('No other tabs'),
      'the offline tab does not claim the room is empty');

    // A sees the partition too: B's row stays as gone.
    await waitFor(a, async () => (await a.getByTestId('peer-gone').count()) === 1
      && (await attr(a, 'peer-gone', 'data-peer-name')) === bName, "A's table keeps B, marked gone");

    // Offline, B still knows A's name: paying by name works and the explorer labels it.
    await mineBlocks(b, 1);
    await b.getByTestId('send-to').fill(aName);
    await b.getByTestId('send-amount').fill('3');
    await b.getByTestId('send-button').click();
    await waitFor(b, async () => (await attr(b, 'send-result', 'data-ok')) === 'true',
      `B pays ${aName} by name while offline (${await text(b, 'send-result')})`, 10_000);

    await b.getByTestId('go-offline').click();
    await sameTip([a, b], 'back together');
    await waitFor(b, async () => (await syncState(b)) === 'synced'
      && (await b.getByTestId('peer-row').count()) === 1
      && (await b.getByTestId('peer-gone').count()) === 0, 'B back in sync, A present again');
    await waitFor(a, async () => (await a.getByTestId('peer-gone').count()) === 0
      && (await attr(a, 'peer-row', 'data-present')) === 'true', "B present again in A's table");
  } finally {
    await context.close();
  }
});

test('a tab whose relay connection fails says reconnecting, then in sync when it is back', async () => {
  const context = await launch();
  try {
    // local=off: B, a tab of the same browser, would otherwise keep A company over the tab
    // channel (tabs.test.js shows that); here A must be alone without the relay.
    const [a] = await openPair(context, uniqueRoom('reconnect'), '&local=off');
    // Every new socket to the relay is refused from here on (the suite's relay stays up).
    let refuse = true;
    await a.routeWebSocket(/\/ws\//, (ws) => {
      if (refuse) ws.close({ code: 1011, reason: 'refused by the test' });
      else ws.connectToServer(); // forwards every frame both ways
    });
    await a.getByTestId('go-offline').click();
    await waitFor(a, async () => (await syncState(a)) === 'offline', 'offline first');
    await a.getByTestId('go-offline').click();
    await waitFor(a, async () => (await syncState(a)) === 'reconnecting', 'reconnecting while the socket fails', 15_000);
    assert.notEqual(await text(a, 'status-sync'), 'in sync');
    refuse = false;
    await waitFor(a, async () => (await attr(a, 'status-connection', 'data-state')) === 'connected'
      && (await syncState(a)) === 'synced',
    `connected and in sync again (${await attr(a, 'status-connection', 'data-state')}, ${await syncState(a)})`, 30_000);
  } finally {
    await context.close();
  }
});

test('a muted peer falls behind and catches up once unmuted', async () => {
  const context = await launch();
  try {
    const [a, b] = await openPair(context, uniqueRoom('mute'));
    await mineBlocks(a, 1);
    await sameTip([a, b], 'a shared start');
    await a.getByTestId('peer-mute').first().click();
    await waitFor(a, async () => (await attr(a, 'peer-mute', 'aria-pressed')) === 'true', 'B muted in A');
    await mineBlocks(a, 2);
    await b.waitForTimeout(1_000);
    assert.notEqual(await tipHash(b), await tipHash(a), 'B does not hear of the blocks A mined while muted');
    await a.getByTestId('peer-mute').first().click();
    await sameTip([a, b], 'B catches up once A unmutes it');
    // The row is drawn from the next snapshot: on a loaded machine it may lag the tip check.
    await waitFor(a, async () => (await attr(a, 'peer-mute', 'aria-pressed')) === 'false', 'B unmuted in A');
  } finally {
    await context.close();
  }
});

test('the receiver sees a payment with its amount, sender and confirmations', async () => {
  const context = await launch();
  try {
    const [a, b] = await openPair(context, uniqueRoom('receive'));
    const aName = await text(a, 'node-name');
    const bName = await text(b, 'node-name');
    await mineBlocks(a, 1);
    await sameTip([a, b], 'B follows A');
    await a.getByTestId('send-to').fill(bName);
    await a.getByTestId('send-amount').fill('7');
    await a.getByTestId('send-button').click();
    await waitFor(a, async () => (await attr(a, 'send-result', 'data-ok')) === 'true', 'A sent 7 coins to B');

    await waitFor(b, async () => (await b.getByTestId('rx-item').count()) === 1, 'B lists the payment', 30_000);
    const item = b.getByTestId('rx-item').first();
    assert.equal(await item.getAttribute('data-state'), 'pending');
    assert.equal(await item.getAttribute('data-amount'), '7');
    assert.match(await item.innerText(), new RegExp(`7 coins from ${aName}`));
    assert.match(await text(b, 'event-log'), new RegExp(`received 7 coins from ${aName} \\([0-9a-f]{8}\\), pending`));

    await mineBlocks(a, 1);
    await waitFor(b, async () => (await item.getAttribute('data-state')) === 'confirmed', 'confirmed in B', 30_000);
    // Classroom blocks come fast: the confirmations are the blocks from its block to B's tip.
    const confirmed = async () => {
      const [, block, confirmations] = (await item.innerText()).match(/received in block (\d+) \((\d+) confirmations?\)/) ?? [];
      return { block: Number(block), confirmations: Number(confirmations), tip: await height(b) };
    };
    await waitFor(b, async () => {
      const { block, confirmations, tip } = await confirmed();
      return block > 0 && confirmations === tip - block + 1;
    }, `confirmations counted to B's tip (${JSON.stringify(await confirmed())})`, 10_000);
    const first = await confirmed();
    await mineBlocks(a, 1);
    await waitFor(b, async () => (await confirmed()).confirmations > first.confirmations, 'more confirmations', 30_000);
  } finally {
    await context.close();
  }
});

test('the Work column compares branches in blocks, the raw figure in its title', async () => {
  const context = await launch();
  try {
    const [a, b] = await openPair(context, uniqueRoom('work'));
    await mineBlocks(a, 1);
    await sameTip([a, b], 'same chain');
    await waitFor(b, async () => (await text(b, 'peer-work')) === 'same work', 'same work when on one tip');
    // B goes its own way by one block: A (remembered) has about a block's worth less work.
    await b.getByTestId('go-offline').click();
    await mineBlocks(b, 1);
    await waitFor(b, async () => /^\d\.\d blocks? less$/.test(await text(b, 'peer-work')),
      `A shown with less work than B (${await text(b, 'peer-work')})`, 30_000);
    assert.match(await attr(b, 'peer-work', 'title'), /^total work 2\^\d+\.\d$/);
  } finally {
    await context.close();
  }
});

test('a hidden tab says the browser slows it, and catches up when it returns', async () => {
  const context = await launch();
  try {
    const [a, b] = await openPair(context, uniqueRoom('hidden'));
    const setHidden = (page, hidden) => page.evaluate((value) => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (value ? 'hidden' : 'visible') });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => value });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
    await setHidden(b, true);
    await waitFor(b, async () => (await text(b, 'status-background')).includes('in the background'), 'B says it is in the background');
    await mineBlocks(a, 2);
    await setHidden(b, false);
    await waitFor(b, async () => (await b.getByTestId('status-background').count()) === 0, 'the pill goes when B is in front');
    await sameTip([a, b], 'B caught up');
  } finally {
    await context.close();
  }
});
