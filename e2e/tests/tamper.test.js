// The tamper sandbox shows the whole cascade, as the classic blockchain demo does: an edit to a
// copied block makes it and every block after it invalid (each later block is re-pointed at its
// changed parent, so its own hash misses the target), and re-mining the blocks one by one turns
// them green one at a time. A wrong reward stays wrong however often the block is re-mined.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { height, launch, openNode, setMining, text, tipHash, uniqueRoom, waitFor } from './lib.js';

async function validity(page) {
  return page.getByTestId('tamper-row').evaluateAll((rows) => rows.map((row) => row.dataset.valid === 'true'));
}

async function heights(page) {
  return page.getByTestId('tamper-row').evaluateAll((rows) => rows.map((row) => Number(row.dataset.height)));
}

async function remine(page, blockHeight) {
  await page.locator(`[data-testid=tamper-remine][data-height="${blockHeight}"]`).click();
  // One worker searches at the block's own target (set for the whole tab's hash rate, about
  // 2 s a block), so a re-mine takes a few seconds on average, but its time is exponential and
  // the suite runs two scenarios at once on two cores: a CI run once waited 60 s in vain.
  await waitFor(page, async () => (await page.locator(`[data-testid=tamper-row][data-height="${blockHeight}"]`).getAttribute('data-pow')) === 'true',
    `block ${blockHeight} re-mined`, 180_000);
  assert.match(await text(page, 'tamper-outcome'), new RegExp(`Block ${blockHeight} re-mined: nonce \\d+ found after [\\d]+ tr(y|ies)`));
}

test('an edit breaks every later copied block; re-mining them one by one turns them green one by one', async () => {
  const context = await launch();
  try {
    const page = await openNode(context, uniqueRoom('tamper'));
    await setMining(page, true);
    await waitFor(page, async () => (await height(page)) >= 12, 'twelve blocks', 120_000);
    await setMining(page, false);
    const tip = await tipHash(page);

    // A wrong reward amount in the third copied block: it and all after it fail.
    await page.getByTestId('tamper-copy').click();
    const copied = await heights(page);
    assert.equal(copied.length, 8);
    assert.deepEqual(await validity(page), copied.map(() => true), 'the copy is valid');
    await page.getByTestId('tamper-block').selectOption({ index: 2 });
    await page.getByTestId('tamper-field').selectOption('coinbase');
    await page.getByTestId('tamper-value').fill('1000000');
    await page.getByTestId('tamper-apply').click();
    const broken = copied.map((_, i) => i < 2);
    await waitFor(page, async () => JSON.stringify(await validity(page)) === JSON.stringify(broken), 'blocks 2..tip invalid');
    assert.match(await text(page, 'tamper-status'), new RegExp(`6 blocks of 8 invalid, from block ${copied[2]} on`));
    const later = page.locator(`[data-testid=tamper-row][data-height="${copied[3]}"]`);
    assert.match(await later.innerText(), /hash above target/);
    assert.match(await later.innerText(), /re.pointed/);
    // Re-mining finds a nonce, but a wrong reward is not a matter of work.
    await remine(page, copied[2]);
    const third = page.locator(`[data-testid=tamper-row][data-height="${copied[2]}"]`);
    assert.equal(await third.getAttribute('data-valid'), 'false');
    assert.match(await third.innerText(), /wrong amount/);

    // The reward given to someone else: re-mining makes each block valid, one at a time.
    await page.getByTestId('tamper-copy').click();
    await page.getByTestId('tamper-block').selectOption({ index: 2 });
    await page.getByTestId('tamper-field').selectOption('reward-to-me');
    await page.getByTestId('tamper-apply').click();
    await waitFor(page, async () => JSON.stringify(await validity(page)) === JSON.stringify(broken), 'blocks 2..tip invalid again');
    for (let i = 2; i < copied.length; i += 1) {
      await remine(page, copied[i]);
      const expected = copied.map((_, j) => j <= i);
      assert.deepEqual(await validity(page), expected, `after re-mining block ${copied[i]}`);
    }
    assert.match(await text(page, 'tamper-status'), /All 8 copied blocks are valid/);
    assert.equal(await tipHash(page), tip, 'the real chain is untouched');
  } finally {
    await context.close();
  }
});
