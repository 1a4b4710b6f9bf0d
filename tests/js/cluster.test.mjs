// End-to-end: three `ssehub serve --cluster` nodes on one real `redis-server`, behind Debian's
// `haproxy`, and real clients subscribed through haproxy: the npm `eventsource` package, and
// headless Chromium (via playwright-core). The node carrying a client's stream is killed with
// SIGKILL mid-stream; haproxy cuts that stream, the client reconnects by itself through haproxy,
// lands on a live node with its Last-Event-ID, and must end with every acknowledged event exactly
// once, in order, with the publisher's ids, and no gap notice. The Rust side of the same test
// (with its own SSE client) is crates/ssehub/tests/cluster_lb.rs.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EventSource } from 'eventsource';

import { launchBrowser, openEventSource, pageRecord } from './lib/browser.mjs';
import { startCluster, streamsPerNode } from './lib/cluster.mjs';
import { GAP, idsProblem, record } from './lib/events.mjs';
import { metrics, publish, sleep, uniqueTopic, waitUntil } from './lib/hub.mjs';

const TIMEOUT = 90_000;
/** Clients in each test; haproxy's round robin spreads them over the three nodes. */
const CLIENTS = 3;
/** Events published before the kill, while the cut clients wait to reconnect, and after. */
const PER_PHASE = 5;
/**
 * The reconnection time the nodes announce, without jitter: long enough that the events published
 * meanwhile reach the cut clients only by replay from Redis, on another node.
 */
const RETRY_MS = 1500;

const sum = (values) => values.reduce((a, b) => a + b, 0);

/** An npm EventSource on `url`, closed when the test ends. */
function eventSourceClient(t, url) {
  const sentIds = []; // the Last-Event-ID of each connection attempt, null for none
  const es = new EventSource(url, {
    fetch: (input, init) => {
      sentIds.push(init.headers?.['Last-Event-ID'] ?? null);
      return fetch(input, init);
    },
  });
  t.after(() => es.close());
  const rec = record(es, ['message', GAP]);
  return {
    sentIds,
    state: async () => ({ events: [...rec.events], opens: rec.opens, errors: rec.errors.length, readyState: es.readyState }),
  };
}

/** A Chromium page (its own browser context) on haproxy's origin running `new EventSource(path)`. */
async function pageClient(browser, url) {
  const { origin, pathname } = new URL(url);
  const page = await browser.newPage();
  const sentIds = []; // the Last-Event-ID of each request of the EventSource, null for none
  page.on('request', async (req) => {
    if (new URL(req.url()).pathname === pathname) {
      const i = sentIds.push(undefined) - 1; // keep request order; headers arrive asynchronously
      const headers = await req.allHeaders().catch(() => ({}));
      sentIds[i] = headers['last-event-id'] ?? null;
    }
  });
  // Same origin as the stream (haproxy's): no CORS involved.
  const res = await page.goto(`${origin}/healthz`);
  assert.equal(res.status(), 200);
  await openEventSource(page, pathname, ['message', GAP]);
  return { sentIds, state: () => pageRecord(page) };
}

/** Waits until `pred(client's state)` holds; returns the state. */
function waitState(client, pred, what, timeoutMs = 20_000) {
  let last;
  return waitUntil(
    async () => {
      last = await client.state();
      return pred(last) ? last : false;
    },
    { timeoutMs, intervalMs: 50, what: () => `${what} (client ${client.index} on node ${client.node}: ${JSON.stringify(last)})` },
  );
}

/**
 * The test itself, with clients made by `open(t, url)` (`kind` names them in the diagnostics):
 * starts the cluster, subscribes the clients through haproxy one at a time, kills the node of the
 * first client's stream, and checks what every client got.
 */
async function killTheNodeOfAStream(t, kind, open) {
  const started = Date.now();
  const { nodes, lb } = await startCluster(t, { nodes: 3, retryMs: RETRY_MS, retryJitterMs: 0 });
  const topic = uniqueTopic('cluster');

  // One at a time, so that the nodes' open-stream gauges tell which node took each stream.
  const clients = [];
  for (let index = 0; index < CLIENTS; index++) {
    const before = await streamsPerNode(nodes);
    const client = await open(t, `${lb.url}/topics/${topic}`);
    Object.assign(client, { index, node: undefined });
    await waitState(client, (s) => s.readyState === 1, 'the EventSource to open');
    const after = await waitUntil(
      async () => {
        const streams = await streamsPerNode(nodes);
        return sum(streams) === index + 1 ? streams : false;
      },
      { what: `stream ${index + 1} to be counted by a node` },
    );
    client.node = after.findIndex((n, i) => n > before[i]);
    clients.push(client);
  }
  const victim = clients[0].node;
  const survivors = nodes.filter((_, i) => i !== victim);
  const cut = clients.filter((c) => c.node === victim);

  // Only to the surviving nodes, alternately: every publish is acknowledged (none is in flight
  // on the node when it dies), and the events of both go through the one log in Redis.
  const expected = [];
  const publishPhase = async (phase) => {
    for (let k = 0; k < PER_PHASE; k++) {
      const data = `${phase} ${k}`;
      const node = survivors[expected.length % survivors.length];
      expected.push({ type: 'message', data, id: await publish(node.url, topic, data) });
    }
  };
  const everyClientHas = (count, what) =>
    Promise.all(clients.map((c) => waitState(c, (s) => s.events.length >= count, what)));

  await publishPhase('before');
  await everyClientHas(PER_PHASE, 'the events published before the kill');
  const lastBeforeKill = expected.at(-1).id;

  const exit = await nodes[victim].stop('SIGKILL');
  assert.equal(exit.signal, 'SIGKILL', `node ${victim} was killed: ${JSON.stringify(exit)}`);
  // haproxy ends the streams the node carried; their clients notice and wait RETRY_MS. An
  // EventSource that got a non-200 answer would be CLOSED (2) for good instead.
  for (const c of cut) {
    await waitState(c, (s) => s.errors >= 1 && s.readyState === 0, 'the client to notice the end of its stream and wait to reconnect');
  }

  await publishPhase('during');
  assert.equal(
    sum(await streamsPerNode(nodes)),
    CLIENTS - cut.length,
    'the cut clients were still waiting to reconnect when the events "during" were published',
  );
  for (const c of cut) {
    await waitState(c, (s) => s.opens === 2 && s.readyState === 1, 'the client to reconnect through haproxy');
  }
  await waitUntil(async () => sum(await streamsPerNode(nodes)) === CLIENTS, {
    what: 'the surviving nodes to count the reconnected streams',
  });
  await everyClientHas(2 * PER_PHASE, 'the events published while the cut clients were away');

  await publishPhase('after');
  await everyClientHas(3 * PER_PHASE, 'the events published after the reconnection');
  await sleep(300); // room for anything unexpected (a duplicate, a gap notice) to show up

  const samples = await Promise.all(survivors.map((n) => metrics(n.url)));
  const replayed = sum(samples.map((m) => m.get('ssehub_replayed_events_total')));
  const gaps = sum(samples.map((m) => m.get('ssehub_gap_events_total')));
  for (const c of clients) {
    const s = await c.state();
    const ids = s.events.map((e) => e.id);
    const got = new Set(ids);
    const lost = expected.filter((e) => !got.has(e.id)).length;
    const duplicates = ids.length - got.size;
    const wasCut = c.node === victim;
    t.diagnostic(
      `${kind} client ${c.index} on node ${c.node}${wasCut ? ' (killed)' : ''}: published ${expected.length}, ` +
        `acknowledged ${expected.length}, received ${s.events.length}, lost ${lost}, duplicates ${duplicates}, ` +
        `reconnects ${s.opens - 1}`,
    );
    const context = JSON.stringify({ client: c.index, node: c.node, victim, sentIds: c.sentIds, ...s, expected });
    assert.deepEqual(s.events.filter((e) => e.type === GAP), [], `no gap notice: ${context}`);
    assert.deepEqual({ lost, duplicates }, { lost: 0, duplicates: 0 }, context);
    assert.deepEqual(s.events, expected, `every acknowledged event once, in order, with the publisher's id: ${context}`);
    assert.equal(idsProblem(ids), null, context);
    assert.deepEqual(c.sentIds, wasCut ? [null, lastBeforeKill] : [null], `the Last-Event-ID of each request: ${context}`);
    assert.equal(s.opens, wasCut ? 2 : 1, context);
    assert.equal(s.readyState, 1, context);
  }
  assert.equal(gaps, 0, 'no node sent a gap notice');
  assert.equal(replayed, PER_PHASE * cut.length, 'each cut client got the events "during" by replay');
  t.diagnostic(`${kind}: ${cut.length} of ${CLIENTS} streams on the killed node, replayed ${replayed}, ${Date.now() - started} ms`);
}

test('npm EventSource through haproxy: a node killed mid-stream loses the clients no event', { timeout: TIMEOUT }, async (t) => {
  await killTheNodeOfAStream(t, 'eventsource', eventSourceClient);
});

test('Chromium EventSource through haproxy: a node killed mid-stream loses the pages no event', { timeout: TIMEOUT }, async (t) => {
  const browser = await launchBrowser(t);
  await killTheNodeOfAStream(t, 'chromium', (_t, url) => pageClient(browser, url));
});
