// Direct links against the relay, side by side in one run (BENCHMARKS.md, "Direct links").
// Run by web/bench/links.sh inside a network namespace with only loopback, against the relay
// at E2E_BASE serving the release build.
//
//   1. Round trip between two tabs: over their direct link (the link heartbeat's own figure,
//      `data-rtt-us`) and through the relay (a `send` echoed by the other tab, on WebSockets
//      opened in the same two tabs), p50 and p90.
//   2. Time from a block being mined to it being in every tab of an 8-tab room, with every
//      link relayed (`max_links=0`) and with direct links (the default bound covers the room).
//      Each tab records when a block first shows in its event log (the log is written as the
//      node accepts the block, unlike the throttled status bar), on the one machine clock.
//   3. Relay bytes per block in both rooms, from the relay's /metrics (signaling separately).
import {
  BASE, attr, launch, launchWithDirectLinks, openNode, setMining, text, uniqueRoom, waitFor,
} from '../../e2e/tests/lib.js';

const TABS = 8;
const MINING_MS = 6_000;

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function metrics() {
  const textual = await (await fetch(`${BASE}/metrics`)).text();
  const read = (name) => {
    const line = textual.split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(' ')[1]) : 0;
  };
  return {
    bytesIn: read('relay_bytes_in_total'),
    bytesOut: read('relay_bytes_out_total'),
    signalBytes: read('relay_signal_bytes_total'),
  };
}

async function directCount(page) {
  return parseInt((await attr(page, 'status-links', 'data-count')) ?? '0', 10);
}

async function roundTrips() {
  const context = await launchWithDirectLinks();
  try {
    const room = uniqueRoom('bench-rtt');
    const a = await openNode(context, room);
    const b = await openNode(context, room);
    await waitFor(a, async () => (await directCount(a)) === 1, 'a direct link', 30_000);
    // Direct: the heartbeat measures the link once a second.
    const direct = [];
    let last = '';
    const until = Date.now() + 25_000;
    while (direct.length < 20 && Date.now() < until) {
      const rtt = await a.locator('[data-testid="peer-link"]').first().getAttribute('data-rtt-us');
      if (rtt && rtt !== last) {
        direct.push(Number(rtt) / 1000);
        last = rtt;
      }
      await a.waitForTimeout(250);
    }
    // Relayed: the same two tabs, a WebSocket each in another room; B echoes what A sends.
    const echoRoom = uniqueRoom('bench-echo');
    const wsUrl = `${BASE.replace('http', 'ws')}/ws/${echoRoom}`;
    const bId = await b.evaluate((url) => new Promise((resolve) => {
      const socket = new WebSocket(url);
      socket.onmessage = (event) => {
        const frame = JSON.parse(event.data);
        if (frame.type === 'welcome') resolve(frame.peer_id);
        if (frame.type === 'message') {
          socket.send(JSON.stringify({ type: 'send', to: frame.from, payload: frame.payload }));
        }
      };
    }), wsUrl);
    const relayed = await a.evaluate(({ url, to }) => new Promise((resolve) => {
      const socket = new WebSocket(url);
      const samples = [];
      let sentAt = 0;
      const ping = () => {
        sentAt = performance.now();
        socket.send(JSON.stringify({ type: 'send', to, payload: { type: 'ping', n: samples.length } }));
      };
      socket.onmessage = (event) => {
        const frame = JSON.parse(event.data);
        if (frame.type === 'welcome') ping();
        if (frame.type === 'message') {
          samples.push(performance.now() - sentAt);
          // One a 20 ms, like a steady heartbeat rather than a flood.
          if (samples.length < 200) setTimeout(ping, 20); else resolve(samples);
        }
      };
    }), { url: wsUrl, to: bId });
    return { direct, relayed };
  } finally {
    await context.close();
  }
}

/** Records, in every tab, when each block height first appears in its event log. */
async function watchBlocks(page) {
  await page.evaluate(() => {
    window.__blocks = {};
    const log = document.querySelector('[data-testid="event-log"]');
    const note = () => {
      const now = Date.now();
      for (const item of log.querySelectorAll('li[data-kind="block"]')) {
        const match = item.textContent.match(/blocks? (\d+)(?:–(\d+))?/);
        if (!match) continue;
        const first = Number(match[1]);
        const last = Number(match[2] ?? match[1]);
        for (let h = first; h <= last; h += 1) if (!(h in window.__blocks)) window.__blocks[h] = now;
      }
    };
    new MutationObserver(note).observe(log, { childList: true, subtree: true, characterData: true });
  });
}

async function propagation(mode) {
  const direct = mode === 'direct';
  const context = direct ? await launchWithDirectLinks() : await launch();
  try {
    const room = uniqueRoom(`bench-${mode}`);
    const tabs = [];
    for (let i = 0; i < TABS; i += 1) tabs.push(await openNode(context, room, direct ? '' : '&max_links=0'));
    for (const tab of tabs) {
      await waitFor(tab, async () => Number(await text(tab, 'peer-count')) === TABS - 1, 'every peer said hello', 60_000);
      if (direct) await waitFor(tab, async () => (await directCount(tab)) === TABS - 1, 'a full mesh', 60_000);
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (const tab of tabs) await watchBlocks(tab);
    const before = await metrics();
    await setMining(tabs[0], true);
    await new Promise((resolve) => setTimeout(resolve, MINING_MS));
    await setMining(tabs[0], false);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const after = await metrics();
    const seen = await Promise.all(tabs.map((tab) => tab.evaluate(() => window.__blocks)));
    const delays = [];
    for (const [heightText, minedAt] of Object.entries(seen[0])) {
      const arrivals = seen.slice(1).map((blocks) => blocks[heightText]);
      if (arrivals.some((at) => at === undefined)) continue;
      delays.push(Math.max(...arrivals) - minedAt);
    }
    const blocks = delays.length;
    return {
      blocks,
      p50: percentile(delays, 50),
      p90: percentile(delays, 90),
      relayBytesPerBlock: blocks ? (after.bytesIn + after.bytesOut - before.bytesIn - before.bytesOut) / blocks : NaN,
      signalBytes: after.signalBytes - before.signalBytes,
    };
  } finally {
    await context.close();
  }
}

const rtt = await roundTrips();
const relayed = await propagation('relayed');
const direct = await propagation('direct');

const f = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const ratio = (a, b) => f(a / b, 2);
const rows = [
  ['round trip between two tabs, p50 (ms)', f(percentile(rtt.relayed, 50)), f(percentile(rtt.direct, 50)), ratio(percentile(rtt.direct, 50), percentile(rtt.relayed, 50))],
  ['round trip between two tabs, p90 (ms)', f(percentile(rtt.relayed, 90)), f(percentile(rtt.direct, 90)), ratio(percentile(rtt.direct, 90), percentile(rtt.relayed, 90))],
  [`block in all ${TABS} tabs, p50 (ms)`, f(relayed.p50, 0), f(direct.p50, 0), ratio(direct.p50, relayed.p50)],
  [`block in all ${TABS} tabs, p90 (ms)`, f(relayed.p90, 0), f(direct.p90, 0), ratio(direct.p90, relayed.p90)],
  ['relay bytes (in + out) per block', f(relayed.relayBytesPerBlock, 0), f(direct.relayBytesPerBlock, 0), ratio(direct.relayBytesPerBlock, relayed.relayBytesPerBlock)],
];
console.log('| measurement | relayed | direct | direct / relayed |');
console.log('|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
console.log();
console.log(`samples: ${rtt.direct.length} direct round trips (heartbeat), ${rtt.relayed.length} relayed; ` +
  `${relayed.blocks} blocks relayed, ${direct.blocks} blocks direct; signaling during the direct run's mining: ${direct.signalBytes} bytes`);
