// Fair verdicts on the screen: a late joiner that arrives while payments are pending accuses
// nobody, and a tab opened on the wrong network says so in a sentence with the link that fixes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, attr, height, launch, openNode, screenshotOf, setMining, text, tipHash, uniqueRoom, waitFor,
} from './lib.js';

async function misbehaving(page) {
  return page.getByTestId('peer-misbehaving').count();
}

test('a tab that joins while 20 payments are pending accuses no classmate', async () => {
  const context = await launch();
  try {
    const room = uniqueRoom('late');
    const a = await openNode(context, room);
    const b = await openNode(context, room);
    const bName = await text(b, 'node-name');
    await setMining(a, true);
    await waitFor(a, async () => (await height(a)) >= 4, 'A mined 4 blocks', 120_000);
    await setMining(a, false);
    await waitFor(b, async () => (await tipHash(b)) === (await tipHash(a)), 'B follows A');
    // Twenty payments from A's coins, left pending (nobody mines).
    for (let i = 0; i < 20; i += 1) {
      await a.getByTestId('send-to').fill(bName);
      await a.getByTestId('send-amount').fill('1');
      await a.getByTestId('send-fee').fill(String(i % 3));
      await a.getByTestId('send-button').click();
      await waitFor(a, async () => (await attr(a, 'send-result', 'data-ok')) === 'true'
        && (await text(a, 'pool-size')) === String(i + 1), `payment ${i + 1} pending in A`);
    }
    await waitFor(b, async () => (await text(b, 'pool-size')) === '20', 'B holds the 20 pending payments');

    // The late joiner: it learns of the payments before it has the blocks that fund them.
    const c = await openNode(context, room);
    await waitFor(c, async () => (await tipHash(c)) === (await tipHash(a))
      && (await attr(c, 'status-sync', 'data-state')) === 'synced', 'C synced', 60_000);
    await waitFor(c, async () => (await text(c, 'pool-size')) === '20', 'C asked for the pools once in sync and holds all 20');
    for (const [page, name] of [[a, 'A'], [b, 'B'], [c, 'C']]) {
      assert.equal(await misbehaving(page), 0, `${name} shows nobody as misbehaving`);
    }
    assert.doesNotMatch(await text(c, 'event-log'), /misbehav/, 'C logged no offence');
  } finally {
    await context.close();
  }
});

test('a tab on the wrong network says it is alone and links to the room on the right one', async () => {
  const context = await launch();
  try {
    const room = uniqueRoom('wrong-net');
    const a = await openNode(context, room);
    // Opened without `&net=classroom`: the main network, in a classroom room.
    const d = await context.newPage();
    await d.goto(`${BASE}/?room=${room}`);
    await waitFor(d, async () => (await attr(d, 'status-sync', 'data-state')) === 'other-network',
      'D says it is alone on another network');
    const banner = d.getByTestId('wrong-network');
    assert.match(await banner.innerText(), /on the classroom network; this tab is on the main network/);
    const fix = d.getByTestId('wrong-network-fix');
    assert.equal(await fix.getAttribute('href'), `?room=${room}&net=classroom`);
    assert.notEqual(await attr(d, 'status-sync', 'data-state'), 'synced', 'no green pill');
    await d.setViewportSize({ width: 390, height: 800 });
    await screenshotOf(d, 'wrong-network');
    await fix.click();
    await waitFor(d, async () => (await attr(d, 'status-sync', 'data-state')) === 'synced'
      && (await text(d, 'peer-count')) === '1', 'D, on the classroom network now, joins A');
    assert.equal(await d.getByTestId('wrong-network').count(), 0, 'the banner is gone');
    assert.equal(await tipHash(d), await tipHash(a));
  } finally {
    await context.close();
  }
});
