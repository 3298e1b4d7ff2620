// A page load is quiet: no warning or error in the page's console or its workers'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, attr, height, launch, setMining, uniqueRoom, waitFor } from './lib.js';

test('a page load, with mining workers started, logs no warning and no error', async () => {
  const context = await launch();
  try {
    const page = await context.newPage();
    const messages = [];
    page.on('console', (m) => { if (['warning', 'error'].includes(m.type())) messages.push(`console ${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => messages.push(`page error: ${e.message}`));
    // The browser's own log (preload and integrity warnings, and what workers print).
    const cdp = await context.newCDPSession(page);
    await cdp.send('Log.enable');
    cdp.on('Log.entryAdded', ({ entry }) => {
      if (['warning', 'error'].includes(entry.level)) messages.push(`log ${entry.level} (${entry.source}): ${entry.text}`);
    });
    await page.goto(`${BASE}/?room=${uniqueRoom('quiet')}&net=classroom`);
    await waitFor(page, async () => (await attr(page, 'status-connection', 'data-state')) === 'connected', 'connected');
    await setMining(page, true);
    await waitFor(page, async () => (await height(page)) >= 2, 'two blocks mined by the workers', 120_000);
    await setMining(page, false);
    await page.waitForTimeout(1_000);
    assert.deepEqual(messages, []);
  } finally {
    await context.close();
  }
});
