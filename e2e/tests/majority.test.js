// The majority lesson (issue 17) in two real tabs on the classroom network: a tab with most of
// the room's hash power (the throttle at 100 % against 10 %) goes private below a public chain
// that then gets a head start of two blocks, mines past it in secret and releases: the other
// tab drops its head start and follows. Both tabs have the ?lesson=majority card open, and each
// ticks every step: the teacher's as the majority, the student's as the tab that watches it
// (issue 29: a student could not finish the card, and its dial step ticked by itself). Once a
// tab's dial has moved, its card counts who mined the blocks since, and names the teacher's tab
// with more than half of them (issue 29: the card showed nothing of the dial's effect).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attr, launch, lessonFinished, lessonTicked, openNode, screenshotOf, setMining, text, tipHash, uniqueRoom, waitFor,
} from './lib.js';

async function setThrottle(page, percent) {
  await page.getByTestId('mine-throttle').selectOption(String(percent));
}

const lead = async (page) => parseInt((await attr(page, 'private-lead', 'data-lead-blocks')) ?? 'NaN', 10);

test('a tab with most of the hash power overtakes a public chain that had a head start', async () => {
  const context = await launch({ viewport: { width: 1280, height: 900 } });
  try {
    const room = uniqueRoom('majority');
    const major = await openNode(context, room, '&lesson=majority');
    const minor = await openNode(context, room, '&lesson=majority');
    for (const page of [major, minor]) {
      await waitFor(page, async () => (await page.getByTestId('peer-row').count()) === 1, 'each tab sees the other');
    }
    // In the open, at the lesson's 50 %: both mine until each has a block; then the teacher
    // turns the dial up to 100 % and the student down to 10 %.
    await setThrottle(major, 50);
    await setThrottle(minor, 50);
    await setMining(major, true);
    await setMining(minor, true);
    const miners = async () => major.getByTestId('share-row').count();
    await waitFor(major, async () => (await miners()) >= 2, 'both tabs have mined a block', 120_000);
    for (const page of [major, minor]) {
      await waitFor(page, async () => (await lessonTicked(page)) === 1, 'the first step, and not the dial\'s', 10_000);
      assert.equal(await page.getByTestId('lesson-since').count(), 0, 'no count of blocks since the dial before it moves');
    }
    await setThrottle(major, 100);
    await setThrottle(minor, 10);
    const share = async () => parseInt((await major.locator('[data-testid=share-row][data-us=true]').getAttribute('data-percent')) ?? '0', 10);
    await waitFor(major, async () => (await share()) > 50, 'the majority tab mines most of the recent blocks', 180_000);
    // The dial's effect: each card counts who mined the blocks since its own dial moved, most
    // first; once there are a handful (MAJORITY_MIN_BLOCKS, 6), the teacher's tab has more than
    // half of them ("you" on its own card), and the majority step ticks on that count.
    const teacherAddress = await attr(major, 'node-address', 'data-address');
    const teacherName = await text(major, 'node-name');
    for (const [page, teacher] of [[major, 'you'], [minor, teacherName]]) {
      const top = page.getByTestId('lesson-since-miner').first();
      await waitFor(page, async () => (await top.count()) === 1
        && parseInt(await attr(page, 'lesson-since', 'data-counted'), 10) >= 6
        && (await top.getAttribute('data-miner')) === teacherAddress
        && parseInt(await top.getAttribute('data-percent'), 10) > 50,
      `the card names the teacher's tab first, above 50 % of 6 blocks or more (${await text(page, 'lesson-since')})`, 120_000);
      assert.match(await text(page, 'lesson-since'), /^Since your dial moved \(at block \d+\): /);
      assert.ok((await top.innerText()).startsWith(`${teacher} `), `${await top.innerText()} names ${teacher}`);
      await waitFor(page, async () => (await lessonTicked(page)) >= 3,
        `the card ticks the public steps (${await attr(page, 'lesson', 'data-ticked')})`, 10_000);
    }

    // The majority goes private and stops; the public chain gets a head start of two blocks.
    await setMining(major, false);
    await major.getByTestId('private-toggle').click();
    await waitFor(major, async () => (await attr(major, 'private-toggle', 'data-private')) === 'true', 'private mining on');
    await setThrottle(minor, 100);
    await waitFor(major, async () => (await lead(major)) <= -2, 'the public chain is two blocks ahead', 120_000);
    await setThrottle(minor, 10);
    const headStart = await tipHash(minor);

    // The majority mines in secret past the public chain, then releases.
    await setMining(major, true);
    await waitFor(major, async () => (await attr(major, 'private-lead', 'data-ahead')) === 'true' && (await lead(major)) >= 1,
      'the private branch overtakes the public chain', 180_000);
    await setMining(major, false);
    await setMining(minor, false);
    await screenshotOf(major, 'desktop-lesson-majority', major.getByTestId('mining-panel'));
    assert.notEqual(await tipHash(minor), await tipHash(major), 'before the release the other tab knows nothing of it');
    await major.getByTestId('private-release').click();
    await waitFor(minor, async () => (await tipHash(minor)) === (await tipHash(major)), 'the other tab follows the released branch', 60_000);
    await waitFor(major, async () => (await attr(major, 'private-released', 'data-heavier')) === 'true', 'the release is said to have won');
    // The head start's tip is no longer on the other tab's best chain.
    assert.equal(await minor.locator(`[data-testid=chain-row][data-hash="${headStart}"]`).count(), 0, 'the head start was dropped');
    for (const [page, role] of [[major, 'teacher'], [minor, 'student']]) await lessonFinished(page, role);
    // In front first: a screenshot of a tab behind another can wait seconds for a frame.
    await minor.bringToFront();
    await screenshotOf(minor, 'desktop-lesson-card-majority-student', minor.getByTestId('lesson'));
    await major.bringToFront();
    await major.setViewportSize({ width: 390, height: 844 });
    await screenshotOf(major, 'phone-lesson-card-majority', major.getByTestId('lesson'));
  } finally {
    await context.close();
  }
});
