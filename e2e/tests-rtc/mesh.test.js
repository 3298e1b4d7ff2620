// A room with more tabs than the direct-link bound (`max_links=2`: each tab links to its two
// neighbours in the ring of peer ids), with the relay process killed: a block and a payment
// reach every tab through gossip over the partial mesh, and a partition made with the mute
// controls heals onto the heavier branch, all without the relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attr, balance, height, launchWithDirectLinks, openNode, screenshot, text, tipHash, uniqueRoom,
  waitFor,
} from '../tests/lib.js';
import {
  directLinks, mineBlocks, peerLinks, sameTip, startRelay, stopRelay,
} from './common.js';

const TABS = 5;

/** `page` mutes (or unmutes) every peer whose name is in `names`. */
async function setMuted(page, names, muted) {
  for (const name of names) {
    const row = page.locator(`[data-testid="peer-row"][data-peer-name="${name}"]`);
    const button = row.getByTestId('peer-mute');
    if (((await button.getAttribute('aria-pressed')) === 'true') !== muted) await button.click();
    await waitFor(page, async () => ((await button.getAttribute('aria-pressed')) === 'true') === muted, `mute ${muted}`);
  }
}

test('more tabs than the link bound: gossip spreads a block and a payment, and a partition heals, without the relay', async () => {
  let running = await startRelay();
  const context = await launchWithDirectLinks();
  try {
    const room = uniqueRoom('mesh');
    const tabs = [];
    // local=off: these tabs share one browser, whose tab channel would link them without WebRTC.
    for (let i = 0; i < TABS; i += 1) tabs.push(await openNode(context, room, '&max_links=2&local=off'));
    for (const tab of tabs) {
      await waitFor(tab, async () => (await peerLinks(tab)).length === TABS - 1, 'every peer known', 30_000);
      await waitFor(tab, async () => (await directLinks(tab)) === 2, 'two direct links (the bound)', 30_000);
      const links = await peerLinks(tab);
      assert.equal(links.filter((link) => link === 'direct').length, 2, `links: ${links}`);
      assert.equal(links.filter((link) => link === 'relayed').length, TABS - 3, `links: ${links}`);
    }
    await mineBlocks(tabs[0], 2);
    await sameTip(tabs, 'everyone on the first blocks');

    await stopRelay(running);
    for (const tab of tabs) {
      await waitFor(tab, async () => (await attr(tab, 'status-connection', 'data-state')) === 'waiting', 'the relay seen gone');
      // Without the relay a tab keeps only the peers it has a direct link to.
      await waitFor(tab, async () => (await peerLinks(tab)).filter((l) => l === 'direct').length === 2, 'still two direct links');
    }

    // A block mined in one tab crosses the ring: two of the four others are not its neighbours.
    await mineBlocks(tabs[2], 1);
    const tip = await sameTip(tabs, 'every tab has the block, through gossip');
    assert.match(tip, /^[0-9a-f]{64}$/);

    // A payment from tab 0 to tab 3 (not neighbours in general), mined by tab 4.
    const to = await attr(tabs[3], 'node-address', 'data-address');
    const before = await balance(tabs[3]);
    await tabs[0].getByTestId('send-to').fill(to);
    await tabs[0].getByTestId('send-amount').fill('3');
    await tabs[0].getByTestId('send-fee').fill('1');
    await tabs[0].getByTestId('send-button').click();
    await waitFor(tabs[0], async () => (await attr(tabs[0], 'send-result', 'data-ok')) === 'true', 'the payment is made');
    await waitFor(tabs[4], async () => (await text(tabs[4], 'event-log')).toLowerCase().includes('transaction'), 'tab 4 heard of it', 30_000);
    await mineBlocks(tabs[4], 1);
    await sameTip(tabs, 'the block with the payment everywhere');
    await waitFor(tabs[3], async () => (await balance(tabs[3])) >= before + 3, 'tab 3 holds the 3 coins', 30_000);

    // Partition: tab 0 mutes its direct neighbours and they mute it; both sides mine apart.
    const names = await Promise.all(tabs.map((tab) => text(tab, 'node-name')));
    assert.equal(new Set(names).size, TABS, `every tab has its own name: ${names}`);
    const neighbours = await tabs[0].locator('[data-testid="peer-row"]').evaluateAll(
      (rows) => rows.filter((row) => row.querySelector('[data-link="direct"]')).map((row) => row.dataset.peerName),
    );
    assert.equal(neighbours.length, 2);
    const cut = async (muted) => {
      await setMuted(tabs[0], neighbours, muted);
      for (const [i, tab] of tabs.entries()) {
        if (neighbours.includes(names[i])) await setMuted(tab, [names[0]], muted);
      }
    };
    await cut(true);
    const start = await height(tabs[0]);
    await mineBlocks(tabs[0], 1);
    const other = tabs[names.indexOf(neighbours[0])];
    await mineBlocks(other, 3);
    assert.notEqual(await tipHash(tabs[0]), await tipHash(other), 'the two sides forked');
    await cut(false);
    await sameTip(tabs, 'the partition healed without the relay');
    assert.ok((await height(tabs[0])) >= start + 3, 'tab 0 took the heavier branch');
    await screenshot(tabs[0], 'mesh-relay-down');
  } finally {
    await context.close();
    await stopRelay(running).catch(() => {});
  }
});
