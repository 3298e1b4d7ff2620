// Browser benchmark of the web app, printed as Markdown (see web/bench/run.sh, which builds
// everything, starts the relay and the chain server, and passes the native figures in).
//
//   node web/bench/bench.js <base url> <room of the chain server> <chain height> <native H/s...>
//
// Measures, in headless Chromium on this machine:
// - the gzipped size of the page (wasm + JS glue) and of the mining worker;
// - time to first render (the boot screen) and to a ready node (status bar shown), fresh profile;
// - hash rate with 1 and 2 mining workers, against the native single-thread figure;
// - long tasks (> 50 ms) on the page's main thread while 2 workers mine;
// - time for a fresh tab to import a chain of <chain height> blocks from a peer.
import { chromium } from '../../e2e/node_modules/playwright-core/index.mjs';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const [base, chainRoom, chainHeightText, ...nativeRates] = process.argv.slice(2);
const chainHeight = Number(chainHeightText);
const native = nativeRates.map(Number).filter((rate) => rate > 0);
const nativeRate = native.reduce((a, b) => a + b, 0) / Math.max(native.length, 1);
const dist = new URL('../../dist/', import.meta.url).pathname;

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const mhs = (rate) => `${(rate / 1e6).toFixed(2)} MH/s`;

async function launch() {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'tabchain-bench-')), {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding'],
    viewport: { width: 1400, height: 1000 },
  });
}

async function until(page, condition, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await page.waitForTimeout(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function sizes() {
  const files = readdirSync(dist);
  const gz = (pattern) => files.filter((file) => pattern.test(file))
    .reduce((sum, file) => sum + gzipSync(readFileSync(join(dist, file)), { level: 9 }).length, 0);
  const page = gz(/^web-.*(_bg\.wasm|\.js)$/);
  const worker = gz(/^(miner_bg\.wasm|miner\.js|worker\.js)$/);
  return { page, worker };
}

async function firstRender() {
  const boot = [];
  const ready = [];
  for (let run = 0; run < 3; run += 1) {
    const context = await launch();
    const page = await context.newPage();
    await page.goto(`${base}/?room=bench-render-${run}&net=main`, { waitUntil: 'commit' });
    await page.waitForSelector('[data-testid="boot"], [data-testid="tip-hash"]', { timeout: 30_000 });
    boot.push(await page.evaluate(() => performance.now()));
    await page.waitForSelector('[data-testid="tip-hash"]', { timeout: 30_000 });
    ready.push(await page.evaluate(() => performance.now()));
    await context.close();
  }
  return { boot: median(boot), ready: median(ready) };
}

async function hashRates() {
  const context = await launch();
  const page = await context.newPage();
  await page.goto(`${base}/?room=bench-hash-${Date.now()}&net=main`);
  await page.waitForSelector('[data-testid="tip-hash"]');
  await page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => list.getEntries().forEach((entry) => window.longTasks.push(entry.duration)))
      .observe({ type: 'longtask' });
  });
  const rates = {};
  let longTasks = [];
  for (const workers of [1, 2]) {
    await page.getByTestId('mine-workers').selectOption(String(workers));
    const toggle = page.getByTestId('mine-toggle');
    if ((await toggle.getAttribute('aria-pressed')) !== 'true') await toggle.click();
    // The meter sums the last 3 s: wait for a full window, then sample.
    await page.waitForTimeout(5_000);
    if (workers === 2) await page.evaluate(() => { window.longTasks = []; });
    const samples = [];
    for (let i = 0; i < 6; i += 1) {
      samples.push(Number(await page.getByTestId('hash-rate').getAttribute('data-value')));
      await page.waitForTimeout(1_000);
    }
    rates[workers] = median(samples);
    if (workers === 2) longTasks = await page.evaluate(() => window.longTasks);
    await toggle.click();
    await page.waitForTimeout(500);
  }
  await context.close();
  return { rates, longTasks };
}

async function importChain() {
  const context = await launch();
  const page = await context.newPage();
  const start = Date.now();
  await page.goto(`${base}/?room=${chainRoom}&net=test`);
  await page.waitForSelector('[data-testid="tip-hash"]');
  const ready = Date.now();
  const height = async () => Number((await page.getByTestId('status-height').innerText()).replace(/[^0-9]/g, ''));
  await until(page, async () => (await height()) >= chainHeight, `height ${chainHeight}`, 600_000);
  const done = Date.now();
  // Scrolling the explorer to the bottom of a long chain must stay responsive.
  const list = page.getByTestId('chain-list');
  const scroll = await list.evaluate(async (element) => {
    const t0 = performance.now();
    for (let i = 1; i <= 20; i += 1) {
      element.scrollTop = (element.scrollHeight * i) / 20;
      await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    }
    return { ms: performance.now() - t0, rows: element.querySelectorAll('[data-testid="chain-row"]').length };
  });
  await context.close();
  return { total: done - start, afterReady: done - ready, scroll };
}

const size = sizes();
const render = await firstRender();
const hash = await hashRates();
const imported = await importChain();

console.log('| measurement | figure |');
console.log('|---|---|');
console.log(`| gzipped page (wasm + JS) | ${kib(size.page)} |`);
console.log(`| gzipped mining worker (wasm + JS) | ${kib(size.worker)} |`);
console.log(`| both together (target at most 400 KB) | ${kib(size.page + size.worker)} |`);
console.log(`| first render (boot screen), fresh profile, median of 3 | ${render.boot.toFixed(0)} ms |`);
console.log(`| node ready (keys made, IndexedDB open, status bar shown), median of 3 | ${render.ready.toFixed(0)} ms |`);
console.log(`| native miner, 1 thread (same run, mean of ${native.length}) | ${mhs(nativeRate)} |`);
console.log(`| Chromium, 1 worker | ${mhs(hash.rates[1])} = ${(hash.rates[1] / nativeRate).toFixed(2)}x native |`);
console.log(`| Chromium, 2 workers | ${mhs(hash.rates[2])} = ${(hash.rates[2] / nativeRate).toFixed(2)}x native |`);
console.log(`| scaling, 2 workers / 1 worker | ${(hash.rates[2] / hash.rates[1]).toFixed(2)}x |`);
console.log(`| main-thread long tasks (> 50 ms) in 6 s of 2 workers mining | ${hash.longTasks.length}${hash.longTasks.length ? `, longest ${Math.max(...hash.longTasks).toFixed(0)} ms` : ''} |`);
console.log(`| import ${chainHeight} blocks from a peer into a fresh tab, from page load | ${(imported.total / 1000).toFixed(1)} s |`);
console.log(`| the same, from the node being ready | ${(imported.afterReady / 1000).toFixed(1)} s (${(chainHeight / (imported.afterReady / 1000)).toFixed(0)} blocks/s) |`);
console.log(`| explorer: 20 scroll steps over ${chainHeight} rows, two frames each | ${imported.scroll.ms.toFixed(0)} ms, ${imported.scroll.rows} rows in the DOM |`);
