// End-to-end: the npm `eventsource` package (a WHATWG-compatible EventSource for Node.js)
// against the real `ssehub serve` binary.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import { EventSource } from 'eventsource';

import { GAP, idsProblem, record, waitOpen } from './lib/events.mjs';
import { metric, metrics, publish, publishBatch, startHub, uniqueTopic, waitUntil, withTimeout } from './lib/hub.mjs';

const TIMEOUT = 60_000;

/** An EventSource closed when the test ends. */
function open(t, url, init) {
  const es = new EventSource(url, init);
  t.after(() => es.close());
  return es;
}

test('a subscription stream has the SSE headers, starts with retry: and sends heartbeats', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory', retryMs: 200, heartbeatSecs: 1 });
  const topic = uniqueTopic('raw');
  // Reads the raw stream until a comment line (a heartbeat) follows the first field line.
  const lines = (text) => text.split('\n').filter((l) => l !== '');
  const { res, head } = await withTimeout(
    new Promise((resolve, reject) => {
      const req = http.get(`${hub.url}/topics/${topic}`, { agent: false }, (res) => {
        let head = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          head += chunk;
          const complete = lines(head.slice(0, head.lastIndexOf('\n') + 1));
          const field = complete.findIndex((l) => !l.startsWith(':'));
          if (field >= 0 && complete.slice(field + 1).some((l) => l.startsWith(':'))) {
            req.destroy();
            resolve({ res, head });
          }
        });
        res.on('error', () => {});
      });
      req.on('error', reject);
      t.after(() => req.destroy());
    }),
    10_000,
    'the retry: line and then a heartbeat comment on the stream',
  );
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'], /^text\/event-stream/);
  assert.match(res.headers['cache-control'] ?? '', /no-cache/);
  assert.equal(res.headers['x-accel-buffering'], 'no');
  const firstField = lines(head).find((l) => !l.startsWith(':'));
  assert.match(firstField, /^retry: ?\d+$/, `the stream should start with retry:, got ${JSON.stringify(head)}`);
});

test('EventSource receives published events in order, with ids, types and multi-line data', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory' });
  assert.equal(hub.proc.stdoutLines.length, 1, `stdout: ${JSON.stringify(hub.proc.stdoutLines)}`);

  const topic = uniqueTopic('chat');
  const es = open(t, `${hub.url}/topics/${topic}`);
  const rec = record(es, ['message', 'greeting', GAP]);
  await waitOpen(es, rec);

  const sent = [
    { data: 'first' },
    { data: 'hello', event: 'greeting' },
    { data: 'line one\nline two\n\nline four' },
    { data: 'ünïcødé ✓ "quoted" {"json": [1, 2]} data: not a field' },
    { data: 'ends with a newline\n' },
    { data: 'bye', event: 'greeting' },
  ];
  const expected = [];
  for (const ev of sent) {
    const id = await publish(hub.url, topic, ev.data, { event: ev.event });
    expected.push({ type: ev.event ?? 'message', data: ev.data, id });
  }
  assert.equal(new Set(expected.map((e) => e.id)).size, expected.length, 'ids are distinct');

  await rec.waitForCount(expected.length);
  await new Promise((r) => setTimeout(r, 100)); // room for anything unexpected to show up
  assert.deepEqual(rec.events, expected);
  assert.equal(es.readyState, EventSource.OPEN);
  assert.deepEqual(rec.errors, []);
  assert.equal(rec.opens, 1);
});

test('EventSource reconnects by itself after a hub restart, sends Last-Event-ID and gets the gap notice', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory', retryMs: 200 });
  const topic = uniqueTopic('resume');

  // Records the Last-Event-ID header of every connection attempt.
  const attempts = [];
  const es = open(t, `${hub.url}/topics/${topic}`, {
    fetch: (input, init) => {
      attempts.push(init.headers?.['Last-Event-ID'] ?? null);
      return fetch(input, init);
    },
  });
  const rec = record(es, ['message', GAP]);
  await waitOpen(es, rec);

  const before = [];
  for (const data of ['a', 'b', 'c']) before.push({ type: 'message', data, id: await publish(hub.url, topic, data) });
  await rec.waitForCount(3);
  assert.deepEqual(rec.events, before);
  const lastId = before.at(-1).id;

  const exit = await hub.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, `ssehub should exit 0 on SIGTERM:\n${hub.proc.log}`);
  // The stream ended; the client notices and tries again by itself.
  await waitUntil(() => rec.errors.length > 0, { what: 'the EventSource to notice the hub went away' });

  await hub.restart();

  const gap = await rec.waitFor((e) => e.type === GAP, { timeoutMs: 20_000, what: `an ${GAP} event` });
  assert.equal(attempts[0], null, 'the first connection carries no Last-Event-ID');
  assert.ok(attempts.length >= 2, `the client reconnected (attempts: ${JSON.stringify(attempts)})`);
  assert.deepEqual(attempts.slice(1), attempts.slice(1).map(() => lastId), 'every reconnect sends the last id');
  const notice = JSON.parse(gap.data);
  assert.equal(notice.reason, 'unknown', gap.data);
  assert.equal(notice.requested, lastId, gap.data);
  assert.equal(notice.oldest, null, `a fresh in-memory hub has no history: ${gap.data}`);
  await waitOpen(es, rec);

  const after = [];
  for (const data of ['d', 'e']) after.push({ type: 'message', data, id: await publish(hub.url, topic, data) });
  await rec.waitForCount(before.length + 1 + after.length);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(rec.events, [...before, gap, ...after], 'the gap notice comes first, then the new events');

  const logId = (id) => id.split('-')[0];
  assert.match(before[0].id, /^[0-9a-f]{8}-/);
  assert.match(after[0].id, /^[0-9a-f]{8}-/);
  assert.notEqual(logId(after[0].id), logId(before[0].id), 'a restarted in-memory hub has a new log id');
});

test('resumes exactly across a restart of a durable hub', { timeout: TIMEOUT }, async (t) => {
  // A long, jitter-free retry: after the restart the client is still waiting while 6 and 7 are
  // published, so it must get them by replay from the durable store.
  const hub = await startHub(t, { retryMs: 1500, retryJitterMs: 0 });
  assert.equal(hub.store, 'disk');
  const { port, dataDir } = hub;
  const topic = uniqueTopic('durable');

  // Records the Last-Event-ID header of every connection attempt.
  const attempts = [];
  const es = open(t, `${hub.url}/topics/${topic}`, {
    fetch: (input, init) => {
      attempts.push(init.headers?.['Last-Event-ID'] ?? null);
      return fetch(input, init);
    },
  });
  const rec = record(es, ['message', GAP]);
  await waitOpen(es, rec);

  const ev = async (n) => ({ type: 'message', data: `event ${n}`, id: await publish(hub.url, topic, `event ${n}`) });
  const expected = [];
  for (let n = 1; n <= 5; n++) expected.push(await ev(n));
  await rec.waitForCount(5);
  assert.deepEqual(rec.events, expected);
  const fifthId = expected[4].id;

  await hub.restart(); // SIGTERM, checked to exit 0; then a new hub on the same port and data dir
  assert.equal(hub.port, port, 'the restarted hub listens on the same port');
  assert.equal(hub.dataDir, dataDir, 'the restarted hub uses the same data dir');

  // Published before the client is back: it must get them by replay from its Last-Event-ID.
  for (let n = 6; n <= 7; n++) expected.push(await ev(n));
  assert.equal(await metric(hub.url, 'ssehub_connections'), 0, 'the client had not reconnected yet when 6 and 7 were published');
  assert.deepEqual(attempts, [null], 'no reconnect attempt yet when 6 and 7 were published');

  await waitUntil(async () => (await metric(hub.url, 'ssehub_connections')) === 1, {
    timeoutMs: 20_000,
    what: () => `the client to reconnect (attempts ${JSON.stringify(attempts)}; events ${JSON.stringify(rec.events)}; errors ${JSON.stringify(rec.errors)})`,
  });
  await rec.waitForCount(7, { timeoutMs: 10_000 });
  expected.push(await ev(8)); // live
  await rec.waitFor((e) => e.data === 'event 8', { what: 'the live event 8' });
  await new Promise((r) => setTimeout(r, 200)); // room for anything unexpected to show up

  const m = await metrics(hub.url);
  const seen = {
    events: rec.events,
    attempts,
    replays: m.get('ssehub_replays_total'),
    replayed: m.get('ssehub_replayed_events_total'),
    gaps: m.get('ssehub_gap_events_total'),
  };
  const context = JSON.stringify(seen);
  assert.deepEqual(rec.events.filter((e) => e.type === GAP), [], `no gap notice: ${context}`);
  assert.deepEqual(rec.events, expected, `exactly 1..8 in order: ${context}`);
  assert.equal(idsProblem(rec.events.map((e) => e.id)), null, context);
  assert.deepEqual(attempts, [null, fifthId], `one reconnect, carrying Last-Event-ID = event 5's id: ${context}`);
  assert.equal(seen.replays, 1, `one subscription replayed history: ${context}`);
  assert.equal(seen.replayed, 2, `it replayed 6 and 7: ${context}`);
  assert.equal(seen.gaps, 0, `no gap notice sent: ${context}`);
  assert.equal(es.readyState, EventSource.OPEN);
  assert.equal(rec.opens, 2);
});

test('a fresh EventSource with ?lastEventId= gets exactly the events after that id', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory' });
  const topic = uniqueTopic('replay');
  const published = [];
  for (const [i, event] of [undefined, 'kind', undefined, 'kind', undefined].entries()) {
    const data = `event ${i}`;
    published.push({ type: event ?? 'message', data, id: await publish(hub.url, topic, data, { event }) });
  }

  const from = published[1].id;
  const es = open(t, `${hub.url}/topics/${topic}?lastEventId=${encodeURIComponent(from)}`);
  const rec = record(es, ['message', 'kind', GAP]);
  await rec.waitForCount(3);
  // A live event after the replay marks the end: nothing else may come before it.
  const live = { type: 'message', data: 'live', id: await publish(hub.url, topic, 'live') };
  await rec.waitFor((e) => e.data === 'live', { what: 'the live event' });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(rec.events, [...published.slice(2), live]);

  // `earliest` replays all retained history.
  const all = open(t, `${hub.url}/topics/${topic}?lastEventId=earliest`);
  const recAll = record(all, ['message', 'kind', GAP]);
  await recAll.waitForCount(published.length + 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(recAll.events, [...published, live]);
});

test('batch publish, multi-topic /subscribe and patterns', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory' });
  const base = uniqueTopic('multi');
  const [a, b, deep] = [`${base}/a`, `${base}/b`, `${base}/c/deep`];

  const both = open(t, `${hub.url}/subscribe?topic=${a}&topic=${b}`);
  const star = open(t, `${hub.url}/topics/${base}/*`);
  const rest = open(t, `${hub.url}/topics/${base}/**`);
  const recs = [both, star, rest].map((es) => record(es, ['message', 'note', GAP]));
  await Promise.all([both, star, rest].map((es, i) => waitOpen(es, recs[i])));

  const batch = [
    { topic: a, data: 'to a' },
    { topic: b, data: 'to b', event: 'note' },
    { topic: deep, data: 'to c/deep' },
  ];
  const ids = await publishBatch(hub.url, batch);
  assert.equal(new Set(ids).size, 3, `distinct ids: ${JSON.stringify(ids)}`);
  const marker = await publish(hub.url, a, 'marker');
  const ev = (i) => ({ type: batch[i].event ?? 'message', data: batch[i].data, id: ids[i] });
  const end = { type: 'message', data: 'marker', id: marker };

  for (const rec of recs) await rec.waitFor((e) => e.data === 'marker', { what: 'the marker event' });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(recs[0].events, [ev(0), ev(1), end], '/subscribe?topic=A&topic=B');
  assert.deepEqual(recs[1].events, [ev(0), ev(1), end], `/topics/${base}/*`);
  assert.deepEqual(recs[2].events, [ev(0), ev(1), ev(2), end], `/topics/${base}/**`);
});
