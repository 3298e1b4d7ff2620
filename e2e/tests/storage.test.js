// The identity panel says in plain words whether the browser promised to keep this node's
// storage (navigator.storage.persist()), and what it means.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, attr, launch, openNode, text, uniqueRoom, waitFor } from './lib.js';

test('the identity panel says whether the browser granted persistent storage', async () => {
  // Chromium decides by itself for an ordinary page (in a fresh headless profile it declines);
  // with the permission granted it says yes. Both answers must read as what they mean.
  const context = await launch();
  try {
    const page = await openNode(context, uniqueRoom('storage'));
    await waitFor(page, async () => ['true', 'false'].includes(await attr(page, 'storage-persisted', 'data-persisted')), 'the browser answered');
    const answer = await attr(page, 'storage-persisted', 'data-persisted');
    const said = await text(page, 'storage-persisted');
    if (answer === 'false') assert.match(said, /did not promise to keep them.*may delete them/);
    else assert.match(said, /agreed to keep them for good/);

    const browser = await context.newCDPSession(page);
    await browser.send('Browser.grantPermissions', { origin: new URL(BASE).origin, permissions: ['durableStorage'] });
    await page.reload();
    await waitFor(page, async () => (await attr(page, 'storage-persisted', 'data-persisted')) === 'true', 'persistence granted');
    assert.match(await text(page, 'storage-persisted'), /agreed to keep them for good: it will not delete them/);
  } finally {
    await context.close();
  }
});
