// The compare table shows the room as it is (issue 29, item 6): tabs that left stay a row each
// ("gone") for about a minute, then fold into one line that opens on a click, so a class that
// reloads often does not fill the projected table with ghosts.
//
// The minute is not waited for: the watching tab's browser has its clock set 65 s ahead
// (Playwright's `clock.setFixedTime`, which keeps timers running), as if a minute had passed
// there. The tabs that leave run in another browser, whose clock is untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openNode, uniqueRoom, waitFor } from './lib.js';

test('tabs that left fold into one line after a minute, and open again on a click', async () => {
  const watching = await launch();
  const leaving = await launch();
  try {
    const room = uniqueRoom('gone');
    const watcher = await openNode(watching, room);
    const first = await openNode(leaving, room);
    const second = await openNode(leaving, room);
    const rows = (testId) => watcher.getByTestId(testId).count();
    await waitFor(watcher, async () => (await rows('peer-row')) === 2, 'both tabs in the watcher\'s table');

    await first.close();
    await second.close();
    await waitFor(watcher, async () => (await rows('peer-gone')) === 2 && (await rows('peer-row')) === 0,
      'a gone row for each tab that left');
    assert.equal(await rows('peer-gone-folded'), 0, 'nothing is folded while the tabs left moments ago');

    await watching.clock.setFixedTime(Date.now() + 65_000);
    await waitFor(watcher, async () => (await rows('peer-gone-folded')) === 1 && (await rows('peer-gone')) === 0,
      'the two gone rows folded into one line, a minute later');
    const folded = watcher.getByTestId('peer-gone-folded');
    assert.equal(await folded.getAttribute('data-count'), '2');
    assert.match(await folded.innerText(), /2 tabs left more than a minute ago/);

    await watcher.getByTestId('peer-gone-unfold').click();
    await waitFor(watcher, async () => (await rows('peer-gone')) === 2, 'the folded tabs listed again on a click');
  } finally {
    await leaving.close();
    await watching.close();
  }
});
