// End-to-end: a real browser's EventSource (headless Debian Chromium, via playwright-core)
// against the real `ssehub serve` binary.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { launchBrowser, openEventSource, pageRecord, servePage, waitInPage } from './lib/browser.mjs';
import { GAP, idsProblem } from './lib/events.mjs';
import { metric, metrics, publish, startHub, uniqueTopic, waitUntil } from './lib/hub.mjs';

const TIMEOUT = 90_000;
const CLOSED = 2;

test('browser EventSource receives events, and resumes by itself across a hub restart', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory', retryMs: 200 });
  const browser = await launchBrowser(t);
  const page = await browser.newPage();

  // Which Last-Event-ID each subscription request of the page carried.
  const topic = uniqueTopic('browser');
  const sentIds = [];
  page.on('request', async (req) => {
    if (new URL(req.url()).pathname === `/topics/${topic}`) {
      const i = sentIds.push(undefined) - 1; // keep request order; headers arrive asynchronously
      const headers = await req.allHeaders().catch(() => ({}));
      sentIds[i] = headers['last-event-id'] ?? null;
    }
  });

  // Same origin as the hub: no CORS involved.
  const res = await page.goto(`${hub.url}/healthz`);
  assert.equal(res.status(), 200);
  await openEventSource(page, `/topics/${topic}`, ['message', 'update', GAP]);
  await waitInPage(page, (r) => r.readyState === 1, { what: 'the EventSource to open' });

  const before = [];
  for (const [data, event] of [['one'], ['two', 'update'], ['multi\nline\ndata']]) {
    before.push({ type: event ?? 'message', data, id: await publish(hub.url, topic, data, { event }) });
  }
  await waitInPage(page, (r) => r.events.length >= before.length, { what: 'the first events' });
  assert.deepEqual((await pageRecord(page)).events, before);
  const lastId = before.at(-1).id;

  await hub.restart(); // SIGTERM (checked to exit 0), then a new in-memory hub on the same port

  const withGap = await waitInPage(page, (r) => r.events.some((e) => e.type === GAP), {
    timeoutMs: 30_000,
    what: `the ${GAP} notice after the restart`,
  });
  const gap = withGap.events.find((e) => e.type === GAP);
  const notice = JSON.parse(gap.data);
  assert.equal(notice.reason, 'unknown', gap.data);
  assert.equal(notice.requested, lastId, `the browser resumed from its last id: ${gap.data}`);
  assert.equal(notice.oldest, null, gap.data);
  assert.ok(withGap.errors >= 1, 'the EventSource saw the stream end');
  await waitInPage(page, (r) => r.readyState === 1, { what: 'the EventSource to be open again' });

  const after = [];
  for (const data of ['three', 'four']) after.push({ type: 'message', data, id: await publish(hub.url, topic, data) });
  await waitInPage(page, (r) => r.events.length >= before.length + 1 + after.length, { what: 'the events after the restart' });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual((await pageRecord(page)).events, [...before, gap, ...after]);

  assert.equal(sentIds[0], null, `first request: ${JSON.stringify(sentIds)}`);
  assert.equal(sentIds.at(-1), lastId, `the reconnect sent Last-Event-ID: ${JSON.stringify(sentIds)}`);
});

test('browser EventSource resumes exactly across a restart of a durable hub', { timeout: TIMEOUT }, async (t) => {
  // A long, jitter-free retry: after the restart the page is still waiting while 6 and 7 are
  // published, so it must get them by replay from the durable store.
  const hub = await startHub(t, { retryMs: 1500, retryJitterMs: 0 });
  assert.equal(hub.store, 'disk');
  const { port, dataDir } = hub;
  const browser = await launchBrowser(t);
  const page = await browser.newPage();

  // Which Last-Event-ID each subscription request of the page carried.
  const topic = uniqueTopic('browser-durable');
  const sentIds = [];
  page.on('request', async (req) => {
    if (new URL(req.url()).pathname === `/topics/${topic}`) {
      const i = sentIds.push(undefined) - 1; // keep request order; headers arrive asynchronously
      const headers = await req.allHeaders().catch(() => ({}));
      sentIds[i] = headers['last-event-id'] ?? null;
    }
  });

  // Same origin as the hub (the same port after the restart): no CORS involved.
  const res = await page.goto(`${hub.url}/healthz`);
  assert.equal(res.status(), 200);
  await openEventSource(page, `/topics/${topic}`, ['message', GAP]);
  await waitInPage(page, (r) => r.readyState === 1, { what: 'the EventSource to open' });

  const ev = async (n) => ({ type: 'message', data: `event ${n}`, id: await publish(hub.url, topic, `event ${n}`) });
  const expected = [];
  for (let n = 1; n <= 5; n++) expected.push(await ev(n));
  await waitInPage(page, (r) => r.events.length >= 5, { what: 'events 1..5' });
  assert.deepEqual((await pageRecord(page)).events, expected);
  const fifthId = expected[4].id;

  await hub.restart(); // SIGTERM, checked to exit 0; then a new hub on the same port and data dir
  assert.equal(hub.port, port, 'the restarted hub listens on the same port');
  assert.equal(hub.dataDir, dataDir, 'the restarted hub uses the same data dir');

  // Published before the page is back: it must get them by replay from its Last-Event-ID.
  for (let n = 6; n <= 7; n++) expected.push(await ev(n));
  assert.equal(await metric(hub.url, 'ssehub_connections'), 0, 'the page had not reconnected yet when 6 and 7 were published');

  await waitUntil(async () => (await metric(hub.url, 'ssehub_connections')) === 1, {
    timeoutMs: 20_000,
    what: () => `the page to reconnect (requests' Last-Event-IDs ${JSON.stringify(sentIds)})`,
  });
  await waitInPage(page, (r) => r.events.length >= 7, { what: 'events 6 and 7 after the restart' });
  expected.push(await ev(8)); // live
  await waitInPage(page, (r) => r.events.some((e) => e.data === 'event 8'), { what: 'the live event 8' });
  await new Promise((r) => setTimeout(r, 200)); // room for anything unexpected to show up

  const record = await pageRecord(page);
  const m = await metrics(hub.url);
  const context = JSON.stringify({
    events: record.events,
    sentIds,
    errors: record.errors,
    opens: record.opens,
    replays: m.get('ssehub_replays_total'),
    replayed: m.get('ssehub_replayed_events_total'),
    gaps: m.get('ssehub_gap_events_total'),
  });
  assert.deepEqual(record.events.filter((e) => e.type === GAP), [], `no gap notice: ${context}`);
  assert.deepEqual(record.events, expected, `exactly 1..8 in order: ${context}`);
  assert.equal(idsProblem(record.events.map((e) => e.id)), null, context);
  assert.deepEqual(sentIds, [null, fifthId], `one reconnect, carrying Last-Event-ID = event 5's id: ${context}`);
  assert.equal(m.get('ssehub_replays_total'), 1, `one subscription replayed history: ${context}`);
  assert.equal(m.get('ssehub_replayed_events_total'), 2, `it replayed 6 and 7: ${context}`);
  assert.equal(m.get('ssehub_gap_events_total'), 0, `no gap notice sent: ${context}`);
  assert.equal(record.readyState, 1, context);
  assert.equal(record.opens, 2, context);
});

test('cross-origin EventSource works for a --cors-origin origin and is refused for others', { timeout: TIMEOUT }, async (t) => {
  const html = '<!doctype html><meta charset="utf-8"><title>ssehub cross-origin test</title><p>test page</p>';
  const allowed = await servePage(t, html);
  const other = await servePage(t, html);
  const hub = await startHub(t, { store: 'memory', corsOrigins: [allowed] });
  const browser = await launchBrowser(t);
  const topic = uniqueTopic('cors');

  const page = await browser.newPage();
  await page.goto(`${allowed}/`);
  await openEventSource(page, `${hub.url}/topics/${topic}`, ['message', GAP]);
  await waitInPage(page, (r) => r.readyState === 1, { what: `the EventSource from ${allowed} to open` });

  const denied = await browser.newPage();
  await denied.goto(`${other}/`);
  await openEventSource(denied, `${hub.url}/topics/${topic}`, ['message', GAP]);
  await waitInPage(denied, (r) => r.readyState === CLOSED && r.errors >= 1, {
    what: `the EventSource from ${other} (not a --cors-origin) to fail`,
  });

  const expected = [];
  for (const data of ['across', 'origins']) expected.push({ type: 'message', data, id: await publish(hub.url, topic, data) });
  await waitInPage(page, (r) => r.events.length >= expected.length, { what: 'the cross-origin events' });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual((await pageRecord(page)).events, expected);
  assert.deepEqual((await pageRecord(denied)).events, [], 'a page of another origin reads nothing');
});
