// A fresh tab syncing a long chain from one native peer through the relay (BENCHMARKS.md, "A
// long chain"): the time to reach the peer's tip, and what the tab holds then (the resident
// memory of its renderer process, where the page, its wasm node and its workers live, and the
// JS heap), then the same tab opened again, replaying the chain from IndexedDB. Run by
// web/bench/long-chain.sh, which starts the relay and the serving node.
//
//   node web/bench/long-chain.mjs <base url> <room> <height>
import { chromium } from '../../e2e/node_modules/playwright-core/index.mjs';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, room, heightText] = process.argv.slice(2);
const target = Number(heightText);
const profile = mkdtempSync(join(tmpdir(), 'tabchain-long-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding'],
  viewport: { width: 1400, height: 1000 },
});

/** Resident memory of this browser's renderer processes, in bytes. */
function rendererRss() {
  const rows = execFileSync('ps', ['-eo', 'rss=,args='], { encoding: 'utf8' }).split('\n');
  return rows.filter((row) => row.includes('--type=renderer') && row.includes(profile))
    .reduce((sum, row) => sum + Number(row.trim().split(/\s+/)[0]) * 1024, 0);
}

try {
  const page = await context.newPage();
  // The same page in an empty room first: what a tab holds with no chain.
  await page.goto(`${base}/?room=${room}-empty&net=test`);
  await page.getByTestId('status-height').first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(5000);
  const emptyRss = rendererRss();
  const started = Date.now();
  await page.goto(`${base}/?room=${room}&net=test`);
  const height = async () => {
    const text = await page.getByTestId('status-height').first().innerText().catch(() => '');
    return parseInt(text.replace(/[^0-9]/g, ''), 10) || 0;
  };
  let peakRss = 0;
  let last = 0;
  const progress = [];
  while (Date.now() - started < 1_800_000) {
    const now = await height();
    peakRss = Math.max(peakRss, rendererRss());
    if (now !== last && Math.floor(now / 50_000) > Math.floor(last / 50_000)) {
      progress.push(`${now} at ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
    last = now;
    if (now >= target) break;
    await page.waitForTimeout(1000);
  }
  const seconds = (Date.now() - started) / 1000;
  await page.waitForTimeout(3000);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const heap = metrics.find((metric) => metric.name === 'JSHeapUsedSize')?.value ?? 0;
  const mb = (bytes) => `${(bytes / 1e6).toFixed(0)} MB`;
  console.log(`| a fresh tab syncs ${target} blocks from one native peer | ${last >= target ? `${seconds.toFixed(0)} s (${(target / seconds).toFixed(0)} blocks/s)` : `not done: height ${last} after ${seconds.toFixed(0)} s`} |`);
  console.log(`| the tab's renderer process at the tip, resident (peak while syncing) | ${mb(rendererRss())} (${mb(peakRss)}) |`);
  console.log(`| the same tab in an empty room (no chain) | ${mb(emptyRss)} |`);
  console.log(`| its JS heap at the tip | ${mb(heap)} |`);
  console.error(`progress: ${progress.join(', ')}`);

  // The same tab opened again with the chain in its storage: it replays it from IndexedDB. In
  // another room, where nobody is, so every block comes from storage and none from the peer.
  const reloadStarted = Date.now();
  await page.goto(`${base}/?room=${room}-reload&net=test`);
  let replayed = 0;
  while (Date.now() - reloadStarted < 900_000) {
    replayed = await height();
    if (replayed >= target) break;
    await page.waitForTimeout(250);
  }
  const reloadSeconds = (Date.now() - reloadStarted) / 1000;
  console.log(`| the same tab opened again: its ${target} blocks replayed from IndexedDB | ${replayed >= target ? `${reloadSeconds.toFixed(1)} s` : `not done: height ${replayed} after ${reloadSeconds.toFixed(0)} s`} |`);
  await page.waitForTimeout(3000);
  console.log(`| the tab's renderer process after the replay, resident | ${mb(rendererRss())} |`);
} finally {
  await context.close();
}
