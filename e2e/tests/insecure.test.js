// The page as a phone opens it from the QR code: a LAN address over plain http, which is not a
// secure context, so the browser gives the page no clipboard and no navigator.storage. Here the
// host name lan.test is mapped to the suite's relay (Chromium's host resolver rules), which makes
// the same kind of origin on a loopback-only machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attr, BASE, launch, text, uniqueRoom, waitFor } from './lib.js';

test('on a plain-http LAN address, copying says what to do and the storage line does not hang', async () => {
  const port = new URL(BASE).port;
  const context = await launch({ args: ['--host-resolver-rules=MAP lan.test 127.0.0.1'] });
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`http://lan.test:${port}/?room=${uniqueRoom('lan')}&net=classroom`);
    await waitFor(page, async () => (await attr(page, 'status-connection', 'data-state')) === 'connected', 'connected');
    assert.equal(await page.evaluate(() => window.isSecureContext), false, 'the page is not a secure context');

    await page.getByTestId('join-copy').click();
    await waitFor(page, async () => (await attr(page, 'join-copy', 'data-state')) === 'no-clipboard', 'the button says it could not copy');
    assert.match(await text(page, 'join-copy-problem'), /select the link above/);
    await waitFor(page, async () => (await attr(page, 'storage-persisted', 'data-persisted')) === 'false',
      'the storage line says nothing was promised', 10_000);
    // The log says why in words, not with the TypeError calling a missing storage manager raises.
    const log = await text(page, 'event-log');
    assert.match(log, /not a secure context/);
    assert.doesNotMatch(log, /TypeError|JsValue/);
    assert.deepEqual(errors, [], 'no uncaught error');
  } finally {
    await context.close();
  }
});
