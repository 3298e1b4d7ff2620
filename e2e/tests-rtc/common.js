// Helpers of the direct-link tests: they own their relay process (they stop and restart it),
// and read the links each tab shows.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BASE, attr, height, setMining, waitFor } from '../tests/lib.js';

// The helper every scenario uses to wait for one tip, shared with the main suite.
export { sameTip } from '../tests/lib.js';

const RELAY = process.env.E2E_RELAY_BIN;
const STATIC_DIR = process.env.E2E_STATIC_DIR ?? 'dist';
const PORT = new URL(BASE).port;

const HOST = new URL(BASE).hostname;

/** Starts the relay on BASE's address and port, with `flags` added, and waits until it answers
 * /healthz. */
export async function startRelay(flags = []) {
  assert.ok(RELAY, 'E2E_RELAY_BIN names the relay binary');
  const args = ['--static-dir', STATIC_DIR, '--addr', HOST, '--port', PORT, ...flags];
  const relay = spawn(RELAY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  relay.stderr.on('data', (chunk) => { log = (log + chunk).slice(-4000); });
  const exited = new Promise((resolve) => relay.once('exit', resolve));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (relay.exitCode !== null) throw new Error(`the relay exited: ${log}`);
    try {
      if ((await fetch(`${BASE}/healthz`)).ok) return { relay, exited, log: () => log };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  relay.kill('SIGKILL');
  throw new Error(`the relay did not come up: ${log}`);
}

export async function stopRelay(running) {
  running.relay.kill('SIGKILL');
  await running.exited;
}

export async function peerLinks(page) {
  return page.locator('[data-testid="peer-row"] [data-testid="peer-link"]').evaluateAll(
    (cells) => cells.map((cell) => cell.dataset.link),
  );
}

export async function directLinks(page) {
  return parseInt((await attr(page, 'status-links', 'data-count')) ?? '0', 10);
}

export async function mineBlocks(page, count) {
  const start = await height(page);
  await setMining(page, true);
  await waitFor(page, async () => (await height(page)) >= start + count, `${count} blocks mined`, 120_000);
  await setMining(page, false);
}

