// The projector view (`?view=class`, issue 29): the whole room on one screen for the teacher's
// projector. At 1920 x 1080: every tab named at its tip in the block tree, the miners' shares,
// the latest events, no text under 24 px, no scrolling and no control at all (nothing a student
// could take for a control of their own tab). A picture of it goes to e2e/screenshots
// (docs/web.md shows a copy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { height, launch, openNode, screenshotOf, setMining, text, uniqueRoom, waitFor } from './lib.js';

/** What the projector view promises, measured on the live page. */
function measure() {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollHeight > window.innerHeight) problems.push(`the page scrolls: ${root.scrollHeight} > ${window.innerHeight} px`);
  if (root.scrollWidth > window.innerWidth) problems.push(`the page scrolls sideways: ${root.scrollWidth} > ${window.innerWidth} px`);
  for (const e of document.querySelectorAll('button, a[href], input, select, textarea, [tabindex]')) {
    problems.push(`a control: ${e.outerHTML.slice(0, 80)}`);
  }
  for (const e of document.querySelectorAll('body *')) {
    if (['SCRIPT', 'STYLE', 'TITLE'].includes(e.tagName)) continue;
    const r = e.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    let size = parseFloat(getComputedStyle(e).fontSize);
    const svg = e.closest('svg');
    if (svg && svg.viewBox.baseVal && svg.viewBox.baseVal.width) {
      const box = svg.getBoundingClientRect();
      size *= Math.min(box.width / svg.viewBox.baseVal.width, box.height / svg.viewBox.baseVal.height);
    }
    if (size < 24) problems.push(`text "${e.textContent.trim().slice(0, 30)}" is ${size.toFixed(1)} px`);
    if (r.bottom > window.innerHeight + 1) problems.push(`text "${e.textContent.trim().slice(0, 30)}" is below the screen`);
  }
  return problems;
}

test('projector view at 1920 x 1080: tabs named at their tips, shares, events, large type, no controls, no scrolling', async () => {
  const context = await launch({ viewport: { width: 1920, height: 1080 } });
  try {
    const room = uniqueRoom('class');
    const miner = await openNode(context, room);
    const student = await openNode(context, room);
    const projector = await openNode(context, room, '&view=class');
    assert.equal(await projector.getByTestId('class-view').count(), 1, 'the projector view replaces the page');
    assert.equal(await projector.getByTestId('mine-toggle').count(), 0, 'no mining control on the projector');
    const minerName = await text(miner, 'node-name');
    const studentName = await text(student, 'node-name');

    await setMining(miner, true);
    await waitFor(projector, async () => (await height(projector)) >= 5, 'five blocks on the projector', 120_000);
    await setMining(miner, false);
    const tip = await height(miner);
    await waitFor(projector, async () => (await height(projector)) === tip && (await height(student)) === tip, 'everyone on the tip');
    // Both tabs named on the block they sit on, in the drawing itself.
    await waitFor(projector, async () => {
      const named = await projector.getByTestId('class-tip').evaluateAll((rows) => rows.map((row) => `${row.dataset.height}:${row.dataset.names}`));
      return named.some((row) => row.startsWith(`${tip}:`) && row.includes(minerName) && row.includes(studentName));
    }, `${minerName} and ${studentName} named at block ${tip}`);
    const share = await projector.getByTestId('class-share').first().innerText();
    assert.ok(share.includes(minerName) && share.includes('100 %'), `the miner has every block: ${share}`);
    const events = await projector.getByTestId('class-events').innerText();
    assert.match(events, /block/i, `the latest events name the blocks: ${events}`);

    const problems = await projector.evaluate(measure);
    assert.deepEqual(problems, [], problems.join('\n'));
    await screenshotOf(projector, 'class-view');
  } finally {
    await context.close();
  }
});
