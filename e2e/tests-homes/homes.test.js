// Two friends at home, each behind an ordinary router, open the page of a relay on a public host
// (e2e/homes.sh builds the networks; this runs in the public one). With the relay's defaults the
// two tabs link directly, through the public addresses the relay's own STUN server told them, and
// with the relay killed they keep converging. With --no-stun the same two homes stay relayed:
// the test can tell a direct link across the routers from one that never opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attr, height, launch, openNode, screenshot, uniqueRoom, waitFor,
} from '../tests/lib.js';
import {
  directLinks, mineBlocks, peerLinks, sameTip, startRelay, stopRelay,
} from '../tests-rtc/common.js';

const HOMES = [process.env.E2E_HOME1_CHROMIUM, process.env.E2E_HOME2_CHROMIUM];

/** One browser in each home. */
async function browsers() {
  assert.ok(HOMES.every(Boolean), 'E2E_HOME1_CHROMIUM and E2E_HOME2_CHROMIUM name the home browsers');
  return Promise.all(HOMES.map((executablePath) => launch({ executablePath })));
}

test('two tabs behind two home routers link directly with the relay\'s defaults, and go on without it', async () => {
  // --metrics-allow: the diagnostics below read the relay's STUN counters from this namespace.
  let running = await startRelay(['--metrics-allow', new URL(process.env.E2E_BASE).hostname]);
  const contexts = await browsers();
  try {
    const room = uniqueRoom('homes');
    const tabs = [];
    for (const context of contexts) tabs.push(await openNode(context, room));
    for (const tab of tabs) {
      await waitFor(tab, async () => {
        const links = await peerLinks(tab);
        return links.length === 1 && links[0] === 'direct';
      }, 'the other home linked directly', 45_000).catch(async (error) => {
        const metrics = await (await fetch(`${process.env.E2E_BASE}/metrics`)).text();
        console.log(metrics.split('\n').filter((line) => line.includes('stun') || line.includes('signal')).join('\n'));
        console.log(await tab.locator('[data-testid="event-log"]').innerText());
        throw error;
      });
      assert.equal(await directLinks(tab), 1);
    }
    const [a, b] = tabs;
    await mineBlocks(a, 1);
    await sameTip(tabs, 'both homes on the first block');

    // The relay dies: the homes go on over their link alone.
    await stopRelay(running);
    running = null;
    for (const tab of tabs) {
      await waitFor(tab, async () => (await attr(tab, 'status-connection', 'data-state')) === 'waiting', 'the relay seen gone');
    }
    const before = await height(b);
    await mineBlocks(a, 2);
    await sameTip(tabs, 'B follows A across the two routers without the relay');
    assert.ok((await height(b)) >= before + 2, 'B has A\'s blocks');
    await screenshot(b, 'homes-relay-down');
  } finally {
    await Promise.all(contexts.map((context) => context.close()));
    if (running) await stopRelay(running);
  }
});

test('without the relay\'s STUN server the same two homes stay relayed', async () => {
  const running = await startRelay(['--no-stun']);
  const contexts = await browsers();
  try {
    const room = uniqueRoom('homes-no-stun');
    const tabs = [];
    for (const context of contexts) tabs.push(await openNode(context, room));
    // Each tab tries, and its attempt ends: the peer is shown relayed, never direct.
    for (const tab of tabs) {
      await waitFor(tab, async () => (await peerLinks(tab)).length === 1, 'the other home listed', 30_000);
    }
    const seen = new Set();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      for (const tab of tabs) for (const link of await peerLinks(tab)) seen.add(link);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(!seen.has('direct'), `no direct link across the routers without STUN (seen: ${[...seen]})`);
    // The tab that tried says so in plain words, and what would help.
    const told = [];
    for (const tab of tabs) {
      const hint = tab.getByTestId('peers-no-path');
      if (await hint.count()) told.push([tab, await hint.innerText()]);
    }
    assert.ok(told.length >= 1, 'a tab says its peer could not be linked directly');
    const [teller, words] = told[0];
    assert.match(words, /1 tab could not be linked directly: .*TURN server/);
    assert.equal(await attr(teller, 'peer-link', 'data-no-path'), 'true');
    await screenshot(teller, 'homes-no-path');
    // The relay still carries the room.
    await mineBlocks(tabs[0], 1);
    await sameTip(tabs, 'both homes on one tip through the relay');
  } finally {
    await Promise.all(contexts.map((context) => context.close()));
    await stopRelay(running);
  }
});
