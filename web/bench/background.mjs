// What Chromium's background throttling does to a hidden tab (BENCHMARKS.md, "A tab in the
// background"). Run by web/bench/background.sh: a headful Chromium in Xvfb, *without* the flags
// the test suite uses to turn throttling off, driven over CDP. Tab A (the one we measure) shares
// a window with a blank tab; bringing the blank tab to the front hides A exactly as a person
// switching tabs does. Tab B, in a window of its own, stays visible.
//
//   1. A mines (1 worker) while visible, then while hidden: its hash rate, blocks it mined, and
//      whether B (the network) still gets them.
//   2. B mines while A only follows: how far A's best chain falls behind B's while hidden, and
//      how long A takes to catch up once it is in front again.
//   3. A's relay connection and its timers (the page's own 10 ms interval counter) meanwhile.
//
// Hidden phases last HIDDEN_S seconds (default 60; Chromium's intensive throttling, one wake-up
// a minute for chained timers, starts after 5 minutes hidden, so HIDDEN_S=400 shows that too).
import { chromium } from '../../e2e/node_modules/playwright-core/index.mjs';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attr, height, setMining, text, uniqueRoom, waitFor } from '../../e2e/tests/lib.js';

const BASE = process.env.E2E_BASE;
const HIDDEN_S = Number(process.env.HIDDEN_S ?? 60);
const VISIBLE_S = 20;
const PORT = 9400 + Math.floor(Math.random() * 500);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const chrome = spawn('/usr/bin/chromium', [
  '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--password-store=basic',
  `--user-data-dir=${mkdtempSync(join(tmpdir(), 'tabchain-bg-'))}`,
  `--remote-debugging-port=${PORT}`, 'about:blank',
], { stdio: 'ignore' });

async function devtools(path, method = 'GET') {
  for (let i = 0; i < 100; i++) {
    try {
      const body = await (await fetch(`http://127.0.0.1:${PORT}${path}`, { method })).text();
      return body.startsWith('{') || body.startsWith('[') ? JSON.parse(body) : body;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`devtools ${path} did not answer`);
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

async function main() {
  await devtools('/json/version');
  const browser = await chromium.connectOverCDP(`http://127.0.0.1:${PORT}`, { noDefaults: true });
  const context = browser.contexts()[0];
  const room = uniqueRoom('background');
  const url = `${BASE}/?room=${room}&net=classroom`;
  // A: the first window's tab. The blank tab opened next to it (same window) hides it.
  const pageA = context.pages()[0];
  await pageA.goto(url);
  const blank = await devtools('/json/new?about:blank', 'PUT');
  // B: its own window, so it stays visible whichever tab of A's window is in front.
  const session = await context.newCDPSession(pageA);
  await session.send('Target.createTarget', { url, newWindow: true });
  let pageB;
  for (let i = 0; i < 100 && !pageB; i++) {
    pageB = context.pages().find((page) => page !== pageA && page.url().startsWith(BASE));
    if (!pageB) await sleep(100);
  }
  if (!pageB) throw new Error('tab B did not open');
  await pageB.waitForLoadState();
  const aTarget = (await session.send('Target.getTargetInfo')).targetInfo.targetId;
  const show = async (which) => devtools(`/json/activate/${which === 'A' ? aTarget : blank.id}`);
  await show('A');
  for (const page of [pageA, pageB]) {
    await waitFor(page, async () => (await attr(page, 'status-connection', 'data-state')) === 'connected', 'connected');
  }
  await pageA.evaluate(() => {
    window.__ticks = 0;
    setInterval(() => { window.__ticks += 1; }, 10);
  });
  const state = async (page) => ({
    height: await height(page),
    rate: Number((await attr(page, 'hash-rate', 'data-value')) ?? 0),
    connection: await attr(page, 'status-connection', 'data-state'),
    ticks: await page.evaluate(() => window.__ticks),
    visibility: await page.evaluate(() => document.visibilityState),
    balanceOfA: 0,
  });

  // ---- 1. A mines, visible then hidden ----
  async function phaseMining(hidden, seconds) {
    await show(hidden ? 'blank' : 'A');
    await sleep(1000);
    const start = await state(pageA);
    const startB = await height(pageB);
    const rates = [];
    const until = Date.now() + seconds * 1000;
    let connectedSamples = 0;
    let samples = 0;
    while (Date.now() < until) {
      await sleep(2000);
      const now = await state(pageA);
      rates.push(now.rate);
      samples += 1;
      if (now.connection === 'connected') connectedSamples += 1;
    }
    const end = await state(pageA);
    const endB = await height(pageB);
    return {
      phase: `A mines, ${hidden ? 'hidden' : 'visible'}`,
      visibility: end.visibility,
      hashRateP50: percentile(rates, 50),
      blocksPerMinuteA: ((end.height - start.height) * 60) / seconds,
      blocksPerMinuteSeenByB: ((endB - startB) * 60) / seconds,
      timerTicksPerSecond: (end.ticks - start.ticks) / seconds,
      connected: `${connectedSamples}/${samples}`,
    };
  }
  await setMining(pageA, true);
  const results = [];
  // Visible, hidden, visible again: the difficulty is still settling in the first phase, so
  // blocks a minute compare between the last two; hash rates compare across all three.
  results.push(await phaseMining(false, VISIBLE_S));
  results.push(await phaseMining(true, HIDDEN_S));
  results.push(await phaseMining(false, VISIBLE_S));
  await show('A');
  await setMining(pageA, false);
  await sleep(2000);

  // ---- 2. B mines, A follows: lag while hidden, catch-up on return ----
  async function phaseFollow(hidden, seconds) {
    await show(hidden ? 'blank' : 'A');
    await sleep(1000);
    const lags = [];
    let connectedSamples = 0;
    let samples = 0;
    const start = await state(pageA);
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      await sleep(2000);
      const b = await height(pageB);
      const a = await state(pageA);
      lags.push(b - a.height);
      samples += 1;
      if (a.connection === 'connected') connectedSamples += 1;
    }
    const end = await state(pageA);
    return {
      phase: `B mines, A ${hidden ? 'hidden' : 'visible'}`,
      visibility: end.visibility,
      lagBlocksP50: percentile(lags, 50),
      lagBlocksMax: Math.max(...lags),
      timerTicksPerSecond: (end.ticks - start.ticks) / seconds,
      connected: `${connectedSamples}/${samples}`,
    };
  }
  await setMining(pageB, true);
  results.push(await phaseFollow(false, VISIBLE_S));
  results.push(await phaseFollow(true, HIDDEN_S));
  // Back in front: B stops, so the target is fixed; time until A shows B's tip.
  await setMining(pageB, false);
  await sleep(500);
  const shown = Date.now();
  await show('A');
  const tipB = await attr(pageB, 'tip-hash', 'data-hash');
  await waitFor(pageA, async () => (await attr(pageA, 'tip-hash', 'data-hash')) === tipB, 'A catches up', 60_000);
  results.push({ phase: 'A back in front', catchUpMs: Date.now() - shown });
  const log = await text(pageA, 'event-log');
  results.push({ phase: 'A event log mentions the background', value: /background/.test(log) });

  console.log(JSON.stringify({ hiddenSeconds: HIDDEN_S, results }, null, 2));
  await browser.close();
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => chrome.kill());
