// Classroom tools: the hash-power dial really scales the hash rate, each tab's share of recent
// blocks is shown, the "Join this room" QR code holds the room's link (the LAN address when
// the relay runs with --lan), and a chain of 500 blocks loads from a file into a fresh tab and
// downloads again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE, attr, balances, height, launch, openNode, screenshotOf, setMining, tipHash, uniqueRoom, waitFor } from './lib.js';

async function openOn(context, base, query) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  await page.goto(`${base}/?${query}`);
  await waitFor(page, async () => (await attr(page, 'status-connection', 'data-state')) === 'connected', 'connected to the relay');
  return page;
}

async function hashRate(page) {
  return Number(await attr(page, 'hash-rate', 'data-value'));
}

/** The mean of the page's hash rate (a 3 s average itself) over `samples` readings 1 s apart. */
async function steadyRate(page, samples) {
  let sum = 0;
  for (let i = 0; i < samples; i += 1) {
    await page.waitForTimeout(1_000);
    sum += await hashRate(page);
  }
  return sum / samples;
}

test('the throttle scales the hash rate, and the share of blocks lists every miner', async () => {
  const context = await launch();
  try {
    // The main network: blocks are rare, so the workers mine one long job each.
    const room = uniqueRoom('throttle');
    const page = await openOn(context, BASE, `room=${room}`);
    await setMining(page, true);
    await page.waitForTimeout(4_000);
    const full = await steadyRate(page, 5);
    await page.getByTestId('mine-throttle').selectOption('20');
    await page.waitForTimeout(4_000);
    const fifth = await steadyRate(page, 5);
    await setMining(page, false);
    const ratio = fifth / full;
    console.log(`[bench] throttle 100 %: ${(full / 1e6).toFixed(2)} MH/s, 20 %: ${(fifth / 1e6).toFixed(2)} MH/s, ratio ${ratio.toFixed(3)}`);
    assert.ok(full > 100_000, `mining at full power: ${full} H/s`);
    assert.ok(ratio > 0.12 && ratio < 0.3, `20 % of the time gives about a fifth of the rate: ${ratio}`);

    // Two tabs of a classroom room mine; each is listed with its share, adding up to 100 %.
    const classRoom = uniqueRoom('shares');
    const a = await openNode(context, classRoom);
    const b = await openNode(context, classRoom);
    await setMining(a, true);
    await setMining(b, true);
    await waitFor(a, async () => (await a.getByTestId('share-row').count()) >= 2, 'both tabs among the miners', 120_000);
    await setMining(a, false);
    await setMining(b, false);
    const rows = await a.getByTestId('share-row').evaluateAll((items) => items.map((item) => ({ us: item.dataset.us, percent: Number(item.dataset.percent) })));
    assert.equal(rows.filter((row) => row.us === 'true').length, 1, 'our own row once');
    assert.equal(rows.reduce((sum, row) => sum + row.percent, 0), 100);
    await screenshotOf(a, 'hash-power', a.getByTestId('hash-power'));
  } finally {
    await context.close();
  }
});

test('the join panel shows the room link and its QR code; with --lan, the LAN address', async () => {
  const context = await launch();
  let relay;
  try {
    const room = uniqueRoom('join');
    const page = await openNode(context, room);
    const url = page.url();
    assert.equal(await attr(page, 'join-qr', 'data-text'), url);
    assert.equal((await page.getByTestId('join-url').innerText()).trim(), url);
    assert.ok((await page.locator('[data-testid=join-qr] path').getAttribute('d')).length > 500, 'modules drawn');
    assert.equal(await page.getByTestId('join-loopback').count(), 1, 'a hint that 127.0.0.1 is this machine only');

    // A relay of our own in LAN mode, serving the same build.
    const bin = process.env.E2E_RELAY_BIN ?? join(process.env.CARGO_TARGET_DIR ?? 'target', 'release', 'relay');
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    relay = spawn(bin, ['--lan', '--port', String(port), '--static-dir', process.env.E2E_STATIC_DIR ?? 'dist'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let printed = '';
    relay.stdout.on('data', (chunk) => { printed += chunk; });
    await waitFor(page, async () => printed.includes('listening'), 'the LAN relay listening');
    const lanAddresses = Object.values(networkInterfaces()).flat()
      .filter((i) => i.family === 'IPv4' && !i.internal && !i.address.startsWith('169.254.')).map((i) => i.address);
    const lanPage = await openOn(context, `http://127.0.0.1:${port}`, `room=${room}&net=classroom`);
    const lanJson = JSON.parse(await (await lanPage.request.get(`http://127.0.0.1:${port}/lan.json`)).text());
    assert.deepEqual(lanJson.urls.map((u) => new URL(u).hostname).sort(), [...new Set(lanAddresses)].sort(), 'every non-loopback IPv4');
    if (lanAddresses.length > 0) {
      const expected = `${lanJson.urls[0].replace(/\/$/, '')}/?room=${room}&net=classroom`;
      await waitFor(lanPage, async () => (await attr(lanPage, 'join-qr', 'data-text')) === expected, `the QR code holds ${expected}`);
      for (const address of lanAddresses) assert.ok(printed.includes(`http://${address}:${port}/`), `printed ${address}: ${printed}`);
      await lanPage.setViewportSize({ width: 390, height: 844 });
      await screenshotOf(lanPage, 'join', lanPage.getByTestId('join'));
    } else {
      // A machine with loopback only: nothing a phone could open, and the page says so.
      assert.ok(printed.includes('no IPv4 address on a network'), printed);
      assert.equal(await lanPage.getByTestId('join-loopback').count(), 1);
    }
  } finally {
    relay?.kill('SIGTERM');
    await context.close();
  }
});

test('a chain of 500 blocks loads into a fresh tab, downloads again and loads into another', async () => {
  // 500 blocks cannot be mined in real time on the test network (its difficulty rises to one
  // block per 10 s), so the chain is built natively (web/examples/chain_file.rs, built by run.sh).
  const dir = mkdtempSync(join(tmpdir(), 'tabchain-chain-'));
  const prepared = join(dir, 'prepared.json');
  const example = process.env.E2E_CHAIN_FILE_BIN ?? join(process.env.CARGO_TARGET_DIR ?? 'target', 'debug', 'examples', 'chain_file');
  execFileSync(example, ['500', prepared]);
  const original = JSON.parse(readFileSync(prepared, 'utf8'));
  assert.equal(original.blocks.length, 500);

  const first = await launch();
  const second = await launch();
  try {
    const b = await openOn(first, BASE, `room=${uniqueRoom('import')}&net=test`);
    assert.equal(await height(b), 0);
    // A file of another network is refused by name, and nothing changes.
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ ...original, network: 'tabchain-classroom' }));
    await b.getByTestId('chain-upload').setInputFiles(wrong);
    await waitFor(b, async () => (await attr(b, 'chain-file-outcome', 'data-ok')) === 'false', 'the wrong network refused');
    assert.match(await b.getByTestId('chain-file-outcome').innerText(), /network "tabchain-classroom"/);
    assert.equal(await height(b), 0);

    await b.getByTestId('chain-upload').setInputFiles(prepared);
    await waitFor(b, async () => (await attr(b, 'chain-file-outcome', 'data-ok')) === 'true', 'the file loaded', 120_000);
    await waitFor(b, async () => (await tipHash(b)) === original.tip_hash, 'the file\'s tip', 30_000);
    assert.equal(await height(b), 500);

    // Download it again from the tab: the same blocks, now in the version 2 format (a header
    // line, then a block a line; the prepared file is version 1, which is still read).
    const [download] = await Promise.all([b.waitForEvent('download'), b.getByTestId('chain-download').click()]);
    const again = readFileSync(await download.path(), 'utf8');
    const [headerLine, ...blockLines] = again.trimEnd().split('\n');
    const { blocks: _blocks, ...originalHeader } = original;
    assert.deepEqual(JSON.parse(headerLine), { ...originalHeader, version: 2 }, 'the header names the same chain');
    assert.deepEqual(blockLines.map((line) => JSON.parse(line)), original.blocks, 'the download holds the blocks it loaded');
    assert.match(download.suggestedFilename(), /^tabchain-test-h500-[0-9a-f]{8}\.jsonl$/);
    const downloaded = join(dir, 'downloaded.jsonl');
    writeFileSync(downloaded, again);

    // A fresh tab of another room and another browser profile loads the download.
    const c = await openOn(second, BASE, `room=${uniqueRoom('import-again')}&net=test`);
    await c.getByTestId('chain-upload').setInputFiles(downloaded);
    await waitFor(c, async () => (await tipHash(c)) === original.tip_hash, 'the same tip in the second tab', 120_000);
    const nonZero = async (page) => (await balances(page)).filter((row) => !row.endsWith('=0')).sort();
    const expected = await nonZero(b);
    assert.equal(expected.length, 2, `two miners with coins: ${expected}`);
    assert.deepEqual(await nonZero(c), expected, 'the same balances');
    // The imported chain was stored: a reload keeps it.
    await c.reload();
    await waitFor(c, async () => (await tipHash(c)) === original.tip_hash, 'the chain kept after a reload', 60_000);
  } finally {
    await first.close();
    await second.close();
  }
});
