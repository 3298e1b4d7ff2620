// Every control in every state meets WCAG AA contrast, measured on the live page: the page is
// put in each state a person meets (idle, mining, a block selected, a send refused, a payment
// pending and confirmed, the tamper sandbox broken, a muted peer, renaming), and in each one
// every text, control boundary, hovered control (real mouse), focused control (real Tab key)
// and disabled button is measured from its computed colours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attr, launch, openNode, setMining, text, uniqueRoom, waitFor, height } from './lib.js';
import { auditDisabled, auditFocus, auditHover, auditPage } from './contrast.js';

async function auditState(page, state, failures) {
  const started = Date.now();
  const { failures: found, checked } = await auditPage(page, state);
  assert.ok(checked.text > 20 && checked.controls > 3, `${state}: the audit saw the page (${JSON.stringify(checked)})`);
  failures.push(...found);
  failures.push(...await auditHover(page, state));
  failures.push(...await auditDisabled(page, state));
  console.error(`[contrast] ${state}: ${checked.text} texts, ${checked.controls} controls, ${Date.now() - started} ms`);
}

function report(failures) {
  const lines = failures.slice(0, 40).map((f) => `${f.state}: ${f.kind} ${f.where} "${f.text ?? ''}" ${f.ratio}:1 < ${f.need}:1 (${f.fg ?? ''} on ${f.bg ?? ''}) ${f.extra ?? ''}`);
  return `${failures.length} contrast failures:\n${lines.join('\n')}`;
}

test('every control in every state meets WCAG AA contrast (text 4.5:1, boundaries and focus rings 3:1)', async () => {
  const context = await launch();
  try {
    const room = uniqueRoom('contrast');
    const page = await openNode(context, room);
    const other = await openNode(context, room);
    await waitFor(page, async () => (await page.getByTestId('peer-row').count()) === 1, 'the other tab in the peer table');
    const failures = [];

    await auditState(page, 'idle', failures);
    const focus = await auditFocus(page, 'idle');
    assert.ok(focus.stops > 10, `Tab reached the controls (${focus.stops} stops)`);
    failures.push(...focus.failures);

    // Mining: the Stop mining button (primary and active at once) in every state.
    await setMining(page, true);
    await waitFor(page, async () => (await height(page)) >= 3, 'three blocks', 120_000);
    await auditState(page, 'mining', failures);
    failures.push(...(await auditFocus(page, 'mining')).failures);
    await setMining(page, false);

    // A block selected in the explorer, with its rules.
    await page.getByTestId('chain-row').first().click();
    await waitFor(page, async () => (await page.getByTestId('block-rule').count()) > 3, 'the block detail');
    // The rules in plain words (issue 29): no epoch milliseconds or 64-digit numbers, no crate
    // paths, counts with their plural, times as spans from the rule's reference.
    const rules = await page.getByTestId('block-rule').allInnerTexts();
    const detail = await page.getByTestId('block-detail').innerText();
    for (const rule of rules) {
      assert.ok(!/\d{10,}/.test(rule), `a raw number in the rule "${rule}"`);
      assert.ok(!rule.includes('::'), `a code path in the rule "${rule}"`);
    }
    assert.ok(!detail.includes('shared::'), 'no crate path in the block detail');
    assert.ok(rules.some((rule) => /stamped .* after the median time of the last 11 blocks/.test(rule)), rules.join('\n'));
    assert.ok(rules.some((rule) => /transaction count — 0 transactions \(at most 1000\)/.test(rule)), rules.join('\n'));
    assert.ok(!/\b1 blocks\b/.test(await page.locator('#explorer-title').innerText()), 'the explorer title');
    // A refused send, then a pending payment, then a confirmed one.
    await page.getByTestId('send-to').fill('nobody-by-that-name');
    await page.getByTestId('send-amount').fill('1');
    await page.getByTestId('send-button').click();
    await waitFor(page, async () => (await attr(page, 'send-result', 'data-ok')) === 'false', 'the send refused');
    await auditState(page, 'block selected, send refused', failures);
    const otherAddress = await attr(other, 'node-address', 'data-address');
    await page.getByTestId('send-to').fill(otherAddress);
    await page.getByTestId('send-amount').fill('2');
    await page.getByTestId('send-button').click();
    await waitFor(page, async () => (await attr(page, 'tx-item', 'data-state')) === 'pending', 'a pending payment');
    await auditState(page, 'payment pending', failures);
    await setMining(page, true);
    await waitFor(page, async () => (await attr(page, 'tx-item', 'data-state')) === 'confirmed', 'the payment confirmed');
    await setMining(page, false);

    // The tamper sandbox broken, a peer muted, the rename form open.
    await page.getByTestId('tamper-copy').click();
    await page.getByTestId('tamper-field').selectOption('reward-to-me');
    await page.getByTestId('tamper-apply').click();
    await waitFor(page, async () => (await page.locator('[data-testid=tamper-row][data-valid=false]').count()) > 0, 'invalid sandbox rows');
    await page.getByTestId('peer-mute').first().click();
    await page.getByTestId('name-edit').click();
    await auditState(page, 'sandbox broken, peer muted, renaming', failures);
    failures.push(...(await auditFocus(page, 'sandbox broken, peer muted, renaming')).failures);

    assert.deepEqual(failures, [], report(failures));
    assert.ok((await text(page, 'tamper-status')).length > 0);
  } finally {
    await context.close();
  }
});
