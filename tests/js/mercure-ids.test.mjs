// End-to-end: publisher ids as Mercure clients use them, in a real browser (headless Debian
// Chromium, via playwright-core) against the real `ssehub serve` binary. What the Mercure
// conformance suite checks of a hub that keeps the publisher's `id`: a page's EventSource on
// `/.well-known/mercure` sees `lastEventId` equal to the id the publisher sent, with multi-line
// data, for updates with several topics and subscriptions with several selectors (raw strings,
// URIs, URI templates), and the publish answer (text/plain) is that id. And what such a client
// then relies on: a resume from that id, by `lastEventID` and by the `Last-Event-ID` header
// the browser sends itself when it reconnects.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';

import { launchBrowser, openEventSource, pageRecord, waitInPage } from './lib/browser.mjs';
import { GAP } from './lib/events.mjs';
import { mercureClaims, signHs256 } from './lib/jwt.mjs';
import { request, startHub } from './lib/hub.mjs';

const TIMEOUT = 90_000;
const PUBLISHER_KEY = 'js-test-publisher-secret-0123456789abcdef';

const random = () => crypto.randomBytes(12).toString('hex');

/** Data with a blank line and an indented one, as the conformance suite sends. */
const dataFor = (name) => `data for\n\n        ${name}`;

test('browser: the EventSource sees the publisher id, with several topics and selectors', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory', args: ['--publisher-key', PUBLISHER_KEY] });
  const token = signHs256(PUBLISHER_KEY, mercureClaims({ publish: ['*'] }));
  const browser = await launchBrowser(t);
  const page = await browser.newPage();
  assert.equal((await page.goto(`${hub.url}/healthz`)).status(), 200);

  const r = Array.from({ length: 5 }, random);
  // One sentinel topic per case, which every subscription also selects: the sentinel update is
  // published after the case's update, so once it arrives the case's update has arrived too,
  // or never will (one order for every stream).
  const cases = [
    { name: 'raw string', received: true, topics: [r[0]], selectors: [r[0]] },
    { name: 'multiple topics', received: true, topics: [random(), r[1]], selectors: [r[1]] },
    { name: 'multiple topic selectors', received: true, topics: [r[2]], selectors: ['foo', r[2]] },
    { name: 'URI', received: true, topics: [`https://example.net/foo/${r[3]}`], selectors: [`https://example.net/foo/${r[3]}`] },
    { name: 'URI template', received: true, topics: [`https://example.net/foo/${r[4]}`], selectors: ['https://example.net/foo/{random}'] },
    { name: 'nonmatching raw string', received: false, topics: [`will-not-match-${random()}`], selectors: ['another-name'] },
    { name: 'nonmatching URI template', received: false, topics: [`https://example.net/foo/${random()}`], selectors: ['https://example.net/bar/{var}'] },
  ];
  for (const c of cases) {
    const id = `id-${JSON.stringify(c.topics)}`;
    const sentinel = `sentinel-${random()}`;
    const url = new URL('/.well-known/mercure', hub.url);
    for (const s of [...c.selectors, sentinel]) url.searchParams.append('topic', s);
    await openEventSource(page, url.pathname + url.search, ['message']);
    await waitInPage(page, (rec) => rec.readyState === 1, { what: `${c.name}: the EventSource to open` });

    // Published from the page, as the suite does (fetch, form body, Bearer token).
    const fields = new URLSearchParams();
    for (const topic of c.topics) fields.append('topic', topic);
    fields.set('id', id);
    fields.set('data', dataFor(c.name));
    const answer = await page.evaluate(
      async ({ body, token }) => {
        const res = await fetch('/.well-known/mercure', {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
          body: new URLSearchParams(body),
        });
        return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
      },
      { body: fields.toString(), token },
    );
    assert.equal(answer.status, 200, `${c.name}: ${JSON.stringify(answer)}`);
    assert.match(answer.type, /^text\/plain(?:$|;)/, c.name);
    assert.equal(answer.body, id, `${c.name}: the answer is the publisher's id`);
    const end = await mercurePublish(hub.url, token, { topic: sentinel, data: 'end', id: `end-${random()}` });

    const rec = await waitInPage(page, (rec) => rec.events.some((e) => e.id === end), { what: `${c.name}: the sentinel` });
    const expected = c.received ? [{ type: 'message', data: dataFor(c.name), id }] : [];
    assert.deepEqual(rec.events.slice(0, -1), expected, `${c.name}: lastEventId is the publisher's id`);
    await page.evaluate(() => window.__es.close());
  }
});

test('browser: a page resumes from a publisher id, by lastEventID and by the header it sends on reconnect', { timeout: TIMEOUT }, async (t) => {
  // Durable, and a long jitter-free retry: the updates published while the page waits to
  // reconnect after the restart must come by replay from the id the browser sends.
  const hub = await startHub(t, { retryMs: 1500, retryJitterMs: 0 });
  const browser = await launchBrowser(t);
  const page = await browser.newPage();
  const sentIds = [];
  page.on('request', async (req) => {
    if (new URL(req.url()).pathname === '/.well-known/mercure') {
      const i = sentIds.push(undefined) - 1;
      const headers = await req.allHeaders().catch(() => ({}));
      sentIds[i] = headers['last-event-id'] ?? null;
    }
  });
  assert.equal((await page.goto(`${hub.url}/healthz`)).status(), 200);

  const book = (n) => `https://example.com/books/${n}`;
  const update = async (topic, data, id) => {
    const got = await mercurePublish(hub.url, null, { topic, data, id });
    assert.equal(got, id);
    return { type: 'message', data, id };
  };
  const first = await update(book(1), 'first\nrevision', 'urn:uuid:rev-1');
  const second = await update('https://example.com/authors/1', 'an author', 'urn:uuid:rev-2');
  const third = await update(book(2), 'second book', 'urn:uuid:rev-3');
  await update('https://example.com/elsewhere', 'not selected', 'urn:uuid:rev-4');

  // Several selectors (a URI template and an exact URI), resuming after the first update.
  const selectors = new URLSearchParams([
    ['topic', 'https://example.com/books/{id}'],
    ['topic', 'https://example.com/authors/1'],
    ['lastEventID', first.id],
  ]);
  await openEventSource(page, `/.well-known/mercure?${selectors}`, ['message', GAP]);
  await waitInPage(page, (rec) => rec.events.length >= 2, { what: 'the replay after the first id' });
  assert.deepEqual((await pageRecord(page)).events, [second, third]);

  await hub.restart();
  // Published while the page waits to reconnect: it must resume from the last id it saw.
  const fourth = await update(book(3), 'while away', 'urn:uuid:rev-5');
  await waitInPage(page, (rec) => rec.events.length >= 3, { timeoutMs: 20_000, what: 'the replay after the restart' });
  const fifth = await update(book(1), 'live\nagain', 'urn:uuid:rev-6');
  await waitInPage(page, (rec) => rec.events.length >= 4, { what: 'the live update' });
  await new Promise((resolve) => setTimeout(resolve, 200)); // room for anything unexpected
  const rec = await pageRecord(page);
  assert.deepEqual(rec.events, [second, third, fourth, fifth], 'no gap notice, no duplicate');
  assert.equal(sentIds[0], null, `the first request resumes by its URL: ${JSON.stringify(sentIds)}`);
  assert.equal(sentIds.at(-1), third.id, `the browser sent the publisher's id: ${JSON.stringify(sentIds)}`);
});

/** `POST /.well-known/mercure` from node, form-encoded; returns the answer's id. */
async function mercurePublish(hubUrl, token, fields) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await request('POST', new URL('/.well-known/mercure', hubUrl), {
    body: new URLSearchParams(fields).toString(),
    headers,
  });
  assert.equal(res.status, 200, `${JSON.stringify(fields)} -> ${res.status} ${res.body}`);
  return res.body;
}
