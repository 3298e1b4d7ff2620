// Shared helpers of the browser suite: launch Debian's Chromium, open tabs as nodes, read what
// the page shows through its data-testid attributes, and wait for conditions with a deadline.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BASE = process.env.E2E_BASE ?? 'http://127.0.0.1:3030';
export const SCREENSHOTS = new URL('../screenshots/', import.meta.url).pathname;

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Several tabs mine at once; background tabs must not be throttled.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** A fresh browser with its own profile (so IndexedDB starts empty). `args` are added flags;
 * `options` go to the context (a phone: `{ viewport: { width: 390, height: 844 }, isMobile: true,
 * hasTouch: true }`). */
export async function launch({ args = [], ...options } = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'tabchain-e2e-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    viewport: { width: 1400, height: 1000 },
    ...options,
  });
  return context;
}

/**
 * A browser whose tabs can open WebRTC data channels to each other on a machine with only a
 * loopback interface (run it inside `unshare -n`, see run.sh): Chromium gathers no ICE candidate
 * at all there unless loopback is allowed and the page holds a media permission.
 */
export async function launchWithDirectLinks() {
  const context = await launch({ args: ['--allow-loopback-in-peer-connection'] });
  await context.grantPermissions(['microphone'], { origin: BASE });
  return context;
}

/** Opens a tab on `room` (classroom network: a block about every 2 s) and waits until it is connected. */
export async function openNode(context, room, extra = '') {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  await page.goto(`${BASE}/?room=${room}&net=classroom${extra}`);
  await waitFor(page, async () => (await attr(page, 'status-connection', 'data-state')) === 'connected', 'connected to the relay');
  return page;
}

export async function text(page, testId) {
  const locator = page.getByTestId(testId).first();
  if ((await locator.count()) === 0) return '';
  return (await locator.innerText()).trim();
}

export async function attr(page, testId, name) {
  const locator = page.getByTestId(testId).first();
  if ((await locator.count()) === 0) return null;
  return locator.getAttribute(name);
}

export async function tipHash(page) {
  return (await attr(page, 'tip-hash', 'data-hash')) ?? '';
}

export async function height(page) {
  const value = parseInt((await text(page, 'status-height')).replace(/[^0-9]/g, ''), 10);
  return Number.isNaN(value) ? -1 : value;
}

/** The balances table as `address=coins` lines, in the order shown. */
export async function balances(page) {
  return page.getByTestId('balance-row').evaluateAll((rows) => rows.map(
    (row) => `${row.dataset.address}=${row.dataset.balance}`,
  ));
}

export async function balance(page) {
  const value = parseInt((await text(page, 'balance')).replace(/[^0-9]/g, ''), 10);
  return Number.isNaN(value) ? -1 : value;
}

/** Polls `condition` until it holds or `timeoutMs` passes; the failure names what was awaited. */
export async function waitFor(page, condition, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      if (await condition()) return;
    } catch (error) {
      lastError = error;
    }
    await page.waitForTimeout(200);
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
}

/** Waits until every page shows the same (non-empty) tip; returns it. */
export async function sameTip(pages, what) {
  await waitFor(pages[0], async () => {
    const tips = await Promise.all(pages.map(tipHash));
    return tips[0] !== '' && tips.every((tip) => tip === tips[0]);
  }, what, 90_000);
  return tipHash(pages[0]);
}

/** How many steps the `?lesson=` card has ticked (-1 while there is no card). */
export async function lessonTicked(page) {
  return parseInt((await attr(page, 'lesson', 'data-ticked')) ?? '-1', 10);
}

/** Waits until `page`'s lesson card has ticked exactly `count` steps; `who` names the tab in the failure. */
export async function lessonTicks(page, count, who, timeoutMs = 10_000) {
  await waitFor(page, async () => (await lessonTicked(page)) === count,
    `the ${who}'s card at ${count} ticked steps (it has ${await lessonTicked(page)})`, timeoutMs);
}

/** Waits until `page`'s lesson card ticks every step and says "Every step done". */
export async function lessonFinished(page, who, timeoutMs = 10_000) {
  const steps = await page.getByTestId('lesson-step').count();
  await lessonTicks(page, steps, who, timeoutMs);
  assert.equal(await page.getByTestId('lesson-finished').count(), 1, `the ${who}'s card says every step is done`);
}

export async function setMining(page, on) {
  const toggle = page.getByTestId('mine-toggle').first();
  const pressed = (await toggle.getAttribute('aria-pressed')) === 'true';
  if (pressed !== on) await toggle.click();
  await waitFor(page, async () => ((await toggle.getAttribute('aria-pressed')) === 'true') === on, `mining ${on ? 'on' : 'off'}`);
}

export async function screenshot(page, name) {
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });
}

/** The viewport as it is (or one element), for docs/web.md: small, not the whole long page. */
export async function screenshotOf(page, name, locator = null) {
  const path = `${SCREENSHOTS}${name}.png`;
  // The sticky status bar would be drawn over an element's picture.
  const style = locator ? '.status-bar { position: static !important; }' : undefined;
  if (locator) await locator.screenshot({ path, style });
  else await page.screenshot({ path });
}

export function vectors() {
  return JSON.parse(readFileSync(process.env.E2E_VECTORS ?? new URL('../../shared/test-vectors/vectors.json', import.meta.url), 'utf8'));
}

export function uniqueRoom(name) {
  return `${name}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}
