// Lesson cards (`?lesson=…`): steps tick when the node sees them happen, in order, and stay
// ticked. Forks: mine a block, go offline, mine alone, come back and reorg onto the heavier
// branch. Tamper: copy the chain into the sandbox and edit a block. Screenshots of a card at
// 390 and 1280 px go to e2e/screenshots (docs/web.md shows copies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attr, height, launch, lessonTicked as ticked, openNode, screenshotOf, setMining, text, tipHash, uniqueRoom, waitFor,
} from './lib.js';

const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 };

async function work(page) {
  return BigInt(`0x${(await attr(page, 'tip-hash', 'data-work')) || '0'}`);
}

test('?lesson=forks ticks mining a block, the partition, mining alone and the reorg', async () => {
  const context = await launch({ viewport: { width: 1280, height: 900 } });
  try {
    const room = uniqueRoom('lesson-forks');
    const a = await openNode(context, room, '&lesson=forks');
    const b = await openNode(context, room);
    assert.equal(await attr(a, 'lesson', 'data-lesson'), 'forks');
    assert.equal(await ticked(a), 0, 'nothing ticked before anything happened');
    assert.equal(await b.getByTestId('lesson').count(), 0, 'no card without ?lesson=');

    await setMining(a, true);
    await waitFor(a, async () => (await ticked(a)) >= 1, 'step 1: a block of ours');
    await setMining(a, false);
    assert.equal(await ticked(a), 1, 'step 2 waits for the partition');
    const start = await height(a);
    await waitFor(b, async () => (await height(b)) >= start, 'B follows');

    await a.getByTestId('go-offline').click();
    await waitFor(a, async () => (await ticked(a)) >= 2, 'step 2: cut off');
    await setMining(a, true);
    await waitFor(a, async () => (await ticked(a)) >= 3, 'step 3: a block mined alone');
    await setMining(a, false);
    assert.equal(await ticked(a), 3, 'no reorg yet');
    const aWork = await work(a);
    const aTip = await tipHash(a);
    await setMining(b, true);
    await waitFor(b, async () => (await work(b)) > aWork * 2n, 'B has clearly more work', 120_000);
    await setMining(b, false);

    await a.getByTestId('go-offline').click();
    await waitFor(a, async () => (await ticked(a)) >= 4, 'step 4: the reorg onto B\'s branch', 90_000);
    assert.notEqual(await tipHash(a), aTip, 'A left its lighter branch');
    assert.equal(await a.getByTestId('lesson-finished').count(), 1);
    const done = await a.locator('[data-testid=lesson-step][data-done=true]').count();
    assert.equal(done, 4, 'every step stays ticked');
    await screenshotOf(a, 'lesson-forks-1280', a.getByTestId('lesson'));
  } finally {
    await context.close();
  }
});

test('?lesson=tamper ticks the copy and the edited block; the card fits a phone', async () => {
  const context = await launch(PHONE);
  try {
    const room = uniqueRoom('lesson-tamper');
    const page = await openNode(context, room, '&lesson=tamper');
    await setMining(page, true);
    await waitFor(page, async () => (await height(page)) >= 4, 'four blocks');
    await setMining(page, false);
    assert.equal(await ticked(page), 0);

    await page.getByTestId('tamper-copy').click();
    await waitFor(page, async () => (await ticked(page)) >= 1, 'step 1: the copy');
    assert.equal(await ticked(page), 1, 'an unedited copy does not tick the edit');
    await page.getByTestId('tamper-block').selectOption({ index: 1 });
    await page.getByTestId('tamper-field').selectOption('reward-to-me');
    await page.getByTestId('tamper-apply').click();
    await waitFor(page, async () => (await ticked(page)) >= 2, 'step 2: an edited block');
    const steps = await page.getByTestId('lesson-step').evaluateAll((rows) => rows.map((row) => row.dataset.done));
    assert.deepEqual(steps, ['true', 'true', 'false']);

    // The card at 390 px: no sideways scroll, text of 12 px at least.
    const problems = await page.evaluate(() => {
      const found = [];
      if (document.documentElement.scrollWidth > document.documentElement.clientWidth) found.push('the page scrolls sideways');
      for (const e of document.querySelectorAll('[data-testid=lesson] *')) {
        if ([...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()) && parseFloat(getComputedStyle(e).fontSize) < 12) found.push(`small text: ${e.textContent.slice(0, 30)}`);
      }
      return found;
    });
    assert.deepEqual(problems, []);
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshotOf(page, 'lesson-tamper-390', page.getByTestId('lesson'));
    assert.ok((await text(page, 'lesson')).includes('Watch for'));
  } finally {
    await context.close();
  }
});
