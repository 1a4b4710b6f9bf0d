// End-to-end: binary events (an `application/octet-stream` publish) reach a real browser's
// EventSource (headless Chromium) and the npm `eventsource` client byte-identical: 64 KiB of
// random bytes with NUL, CR, LF and invalid UTF-8, sent as base64 with the type marked `.b64`.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';

import { EventSource } from 'eventsource';

import { launchBrowser, waitInPage } from './lib/browser.mjs';
import { record, waitOpen } from './lib/events.mjs';
import { publish, request, startHub, uniqueTopic, waitUntil } from './lib/hub.mjs';

const TIMEOUT = 90_000;

/** 64 KiB of random bytes that surely hold NUL, CR, LF, CRLF and bytes that are not UTF-8. */
function payload() {
  const bytes = crypto.randomBytes(64 * 1024);
  bytes.set([0, 0x0d, 0x0a, 0x0d, 0x80, 0xc3, 0x0a, 0xff], 0);
  return bytes;
}

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

/** `POST /topics/{topic}?event=TYPE` with `bytes` as an octet-stream body; the event's id. */
async function publishBytes(hubUrl, topic, bytes, event) {
  const url = new URL(`/topics/${topic}`, hubUrl);
  if (event !== undefined) url.searchParams.set('event', event);
  const res = await request('POST', url, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body).id;
}

test('Chromium receives a binary event byte-identical (SHA-256 in the page), never as a plain message', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory' });
  const browser = await launchBrowser(t);
  const page = await browser.newPage();
  const topic = uniqueTopic('bin');
  assert.equal((await page.goto(`${hub.url}/healthz`)).status(), 200);
  // The README's snippet: base64 to a Uint8Array; then its SHA-256 with crypto.subtle.
  await page.evaluate((url) => {
    const rec = { events: [], messages: [], opens: 0 };
    const es = new EventSource(url);
    es.onopen = () => rec.opens++;
    es.onmessage = (e) => rec.messages.push(e.data);
    es.addEventListener('thumb.b64', async (e) => {
      const bytes = Uint8Array.from(atob(e.data), (c) => c.charCodeAt(0));
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
      rec.events.push({ type: e.type, id: e.lastEventId, length: bytes.length, sha256: hex });
    });
    window.__es = es;
    window.__rec = rec;
  }, `/topics/${topic}`);
  await waitInPage(page, (r) => r.opens >= 1, { what: 'the EventSource to open' });

  const bytes = payload();
  const id = await publishBytes(hub.url, topic, bytes, 'thumb');
  await publish(hub.url, topic, 'text after');
  const rec = await waitInPage(page, (r) => r.events.length >= 1 && r.messages.length >= 1, { what: 'the binary event' });
  assert.deepEqual(rec.events, [{ type: 'thumb.b64', id, length: bytes.length, sha256: sha256(bytes) }]);
  assert.deepEqual(rec.messages, ['text after'], 'onmessage sees only the text event');
});

test('the npm eventsource client decodes a binary event byte-identical, and a batch data_base64 item', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory' });
  const topic = uniqueTopic('bin');
  const es = new EventSource(`${hub.url}/topics/${topic}`);
  t.after(() => es.close());
  const rec = record(es, ['message', 'message.b64', 'blob.b64']);
  await waitOpen(es, rec);

  const bytes = payload();
  const id = await publishBytes(hub.url, topic, bytes);
  const small = Buffer.from([0xff, 0x00, 0x0a]);
  const res = await request('POST', new URL('/publish', hub.url), {
    body: JSON.stringify([{ topic, data_base64: small.toString('base64'), event: 'blob' }]),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 200, res.body);
  await waitUntil(() => rec.events.length >= 2, { what: 'both binary events' });
  const [big, blob] = rec.events;
  assert.equal(big.type, 'message.b64', 'an untyped binary event is message.b64, not message');
  assert.equal(big.id, id);
  const decoded = Buffer.from(big.data, 'base64');
  assert.equal(decoded.length, bytes.length);
  assert.equal(sha256(decoded), sha256(bytes));
  assert.ok(decoded.equals(bytes), 'byte-identical');
  assert.equal(blob.type, 'blob.b64');
  assert.ok(Buffer.from(blob.data, 'base64').equals(small));
});
