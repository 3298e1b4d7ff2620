// Direct links: three tabs open WebRTC data channels to each other, the relay process is killed,
// and the room goes on without it (a block mined in one tab reaches the others, a payment
// arrives), then the relay comes back on the same port and every tab is on it again; a tab
// closed at the end is dropped by the others' heartbeats.
//
// Runs inside a network namespace with only loopback (e2e/run.sh: `unshare -n`), so Chromium's
// ICE finds 127.0.0.1 and nothing else. The test owns its relay process, since it stops it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attr, balance, height, launchWithDirectLinks, openNode, screenshot, text, uniqueRoom, waitFor,
} from '../tests/lib.js';
import {
  directLinks, mineBlocks, peerLinks, sameTip, startRelay, stopRelay,
} from './common.js';

test('tabs linked directly keep mining, paying and converging while the relay is down, and rejoin it', async () => {
  let running = await startRelay();
  const context = await launchWithDirectLinks();
  try {
    const room = uniqueRoom('direct');
    const tabs = [];
    // local=off: these tabs share one browser, whose tab channel would link them without WebRTC.
    for (let i = 0; i < 3; i += 1) tabs.push(await openNode(context, room, '&local=off'));
    const [a, b, c] = tabs;
    for (const tab of tabs) {
      await waitFor(tab, async () => {
        const links = await peerLinks(tab);
        return links.length === 2 && links.every((link) => link === 'direct');
      }, 'both peers linked directly', 30_000);
      assert.equal(await directLinks(tab), 2, 'the status bar counts two direct links');
    }
    // The round trip is measured by the heartbeat (one a second).
    await waitFor(a, async () => {
      const rtts = await a.locator('[data-testid="peer-link"]').evaluateAll(
        (cells) => cells.map((cell) => cell.dataset.rttUs ?? ''),
      );
      return rtts.length === 2 && rtts.every((rtt) => /^[0-9]+$/.test(rtt));
    }, 'a round trip for each link', 10_000);
    await mineBlocks(a, 1);
    await sameTip(tabs, 'everyone on the first block');
    const bAddress = await attr(b, 'node-address', 'data-address');
    assert.match(bAddress ?? '', /^[0-9a-f]{40}$/);
    await screenshot(a, 'direct-links');

    // The relay process dies without a goodbye.
    await stopRelay(running);
    for (const tab of tabs) {
      await waitFor(tab, async () => (await attr(tab, 'status-connection', 'data-state')) === 'waiting', 'the relay seen gone');
      const status = await text(tab, 'status-connection');
      assert.match(status, /server offline.*2 direct links/, `the status says both: ${status}`);
    }

    // A block mined in one tab reaches the others over the direct links alone.
    const before = await height(c);
    await mineBlocks(b, 2);
    await sameTip(tabs, 'the others follow B without the relay');
    assert.ok((await height(c)) >= before + 2, 'C has B\'s blocks');

    // A pays B; C mines the payment into a block; B holds the coins.
    await a.getByTestId('send-to').fill(bAddress);
    await a.getByTestId('send-amount').fill('5');
    await a.getByTestId('send-fee').fill('1');
    await a.getByTestId('send-button').click();
    await waitFor(a, async () => (await attr(a, 'send-result', 'data-ok')) === 'true', 'the payment is made');
    await waitFor(c, async () => (await text(c, 'event-log')).toLowerCase().includes('transaction'), 'C heard of the payment', 30_000);
    await mineBlocks(c, 1);
    await sameTip(tabs, 'everyone on the block with the payment');
    await waitFor(b, async () => (await balance(b)) >= 5, 'B holds the 5 coins', 30_000);
    await waitFor(a, async () => (await text(a, 'tx-list')).toLowerCase().includes('confirmed'), 'A sees the payment confirmed');
    await screenshot(a, 'direct-links-relay-down');

    // The relay comes back on the same port: every tab is on it again, with the same peers.
    running = await startRelay();
    for (const tab of tabs) {
      await waitFor(tab, async () => (await attr(tab, 'status-connection', 'data-state')) === 'connected', 'back on the relay', 30_000);
      await waitFor(tab, async () => (await peerLinks(tab)).length === 2, 'still two peers', 30_000);
    }
    await mineBlocks(a, 1);
    await sameTip(tabs, 'converged after the relay returned');

    // A quick relay restart (issue 16): the first retries come about a second apart, so every
    // tab is back within about 2 s of the relay answering again.
    await stopRelay(running);
    for (const tab of tabs) {
      await waitFor(tab, async () => (await attr(tab, 'status-connection', 'data-state')) !== 'connected', 'the restart seen');
    }
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    running = await startRelay();
    const back = Date.now();
    for (const tab of tabs) {
      await waitFor(tab, async () => (await attr(tab, 'status-connection', 'data-state')) === 'connected', 'back after a quick restart', 10_000);
    }
    const seconds = (Date.now() - back) / 1_000;
    console.log(`# every tab back on the relay ${seconds.toFixed(1)} s after it answered`);
    assert.ok(seconds <= 2.5, `every tab back within about 2 s of the relay answering (${seconds.toFixed(1)} s)`);

    // A closed tab fires no close on the other side of its data channel, and the relay's
    // peer_left does not drop a peer linked directly: the heartbeat does, within seconds.
    await c.close();
    for (const tab of [a, b]) {
      await waitFor(tab, async () => (await peerLinks(tab)).length === 1, 'the closed tab dropped', 15_000);
      assert.equal(await directLinks(tab), 1, 'one direct link left');
    }
  } finally {
    await context.close();
    await stopRelay(running).catch(() => {});
  }
});
