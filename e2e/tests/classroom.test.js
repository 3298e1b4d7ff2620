// Classroom tools: the hash-power dial really scales the hash rate, each tab's share of recent
// blocks is shown, the "Join this room" QR code holds the room's link (the LAN address when
// the relay runs with --lan), and a chain of 500 blocks saved to a file loads into a fresh tab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
    await page.getByTestId('mine-throttle').selectOption('25');
    await page.waitForTimeout(4_000);
    const quarter = await steadyRate(page, 5);
    await setMining(page, false);
    const ratio = quarter / full;
    console.log(`[bench] throttle 100 %: ${(full / 1e6).toFixed(2)} MH/s, 25 %: ${(quarter / 1e6).toFixed(2)} MH/s, ratio ${ratio.toFixed(3)}`);
    assert.ok(full > 100_000, `mining at full power: ${full} H/s`);
    assert.ok(ratio > 0.15 && ratio < 0.35, `25 % of the time gives about a quarter of the rate: ${ratio}`);

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

test('a chain of 500 blocks is downloaded and loads into a fresh tab of another room', async () => {
  const miner = await launch();
  const fresh = await launch();
  try {
    const a = await openOn(miner, BASE, `room=${uniqueRoom('export')}&net=test`);
    await setMining(a, true);
    await waitFor(a, async () => (await height(a)) >= 500, '500 blocks', 240_000);
    await setMining(a, false);
    await a.waitForTimeout(500);
    const tip = await tipHash(a);
    const tipHeight = await height(a);
    const [download] = await Promise.all([a.waitForEvent('download'), a.getByTestId('chain-download').click()]);
    const path = await download.path();
    const file = JSON.parse(readFileSync(path, 'utf8'));
    assert.equal(file.format, 'tabchain-chain');
    assert.equal(file.network, 'tabchain-test');
    assert.equal(file.blocks.length, tipHeight);
    assert.equal(file.tip_hash, tip);
    assert.match(download.suggestedFilename(), new RegExp(`^tabchain-test-h${tipHeight}-`));

    const b = await openOn(fresh, BASE, `room=${uniqueRoom('import')}&net=test`);
    assert.equal(await height(b), 0);
    // A file of another network is refused by name, and nothing changes.
    const dir = mkdtempSync(join(tmpdir(), 'tabchain-chain-'));
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ ...file, network: 'tabchain-classroom' }));
    await b.getByTestId('chain-upload').setInputFiles(wrong);
    await waitFor(b, async () => (await attr(b, 'chain-file-outcome', 'data-ok')) === 'false', 'the wrong network refused');
    assert.match(await b.getByTestId('chain-file-outcome').innerText(), /network "tabchain-classroom"/);
    assert.equal(await height(b), 0);

    await b.getByTestId('chain-upload').setInputFiles(path);
    await waitFor(b, async () => (await attr(b, 'chain-file-outcome', 'data-ok')) === 'true', 'the file loaded', 120_000);
    await waitFor(b, async () => (await tipHash(b)) === tip, 'the same tip', 30_000);
    assert.equal(await height(b), tipHeight);
    const nonZero = async (page) => (await balances(page)).filter((row) => !row.endsWith('=0'));
    assert.deepEqual(await nonZero(b), await nonZero(a), 'the same balances');
    // The imported chain was stored: a reload keeps it.
    await b.reload();
    await waitFor(b, async () => (await tipHash(b)) === tip, 'the chain kept after a reload', 60_000);
  } finally {
    await miner.close();
    await fresh.close();
  }
});
