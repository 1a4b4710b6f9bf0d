// End-to-end: HTTPS and HTTP/2 with real clients against the real `ssehub serve --tls-cert`.
//
// - Chromium opens 12 EventSources to one origin. Over HTTPS the hub speaks HTTP/2 (ALPN), every
//   EventSource is a stream of one connection, and all 12 receive a published event. Over plain
//   HTTP/1.1 Chromium opens at most 6 connections per origin: 6 streams are open, the other 6
//   wait, and only 6 receive the event. The test asserts both, so it proves the difference.
// - The npm `eventsource` client over HTTPS, with a fetch that trusts the test's own CA.
//
// The certificate is made at test time with the `openssl` CLI (self-signed, for 127.0.0.1).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { EventSource } from 'eventsource';

import { launchBrowser } from './lib/browser.mjs';
import { makeTempDir, metric, publish, removeTempDir, startHub, uniqueTopic, waitUntil } from './lib/hub.mjs';

const TIMEOUT = 90_000;
const PAGE_STREAMS = 12;

/** A self-signed certificate for 127.0.0.1 and localhost: {cert, key} paths, `ca` the PEM text. */
async function selfSigned(t) {
  const dir = await makeTempDir('ssehub-tls-');
  t.after(() => removeTempDir(dir));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { cert, key, ca: fs.readFileSync(cert, 'utf8') };
}

/** Starts an in-memory hub serving HTTPS with `tls`. */
function startTlsHub(t, tls, options = {}) {
  return startHub(t, { store: 'memory', ...options, args: ['--tls-cert', tls.cert, '--tls-key', tls.key] });
}

/**
 * Opens PAGE_STREAMS EventSources on `topic` in a page of the hub's own origin; returns the page
 * and the protocol the page itself was loaded over.
 */
async function pageWithStreams(t, hubUrl, topic) {
  const browser = await launchBrowser(t);
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const res = await page.goto(`${hubUrl}/healthz`);
  assert.equal(res.status(), 200);
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  await page.evaluate(
    ({ url, n }) => {
      window.__streams = [];
      for (let i = 0; i < n; i++) {
        const rec = { events: [] };
        rec.es = new EventSource(url);
        rec.es.addEventListener('message', (e) => rec.events.push(e.data));
        window.__streams.push(rec);
      }
    },
    { url: `/topics/${topic}`, n: PAGE_STREAMS },
  );
  return { page, protocol };
}

/** Per EventSource of the page: {state, events}. */
function streams(page) {
  return page.evaluate(() => window.__streams.map((s) => ({ state: s.es.readyState, events: s.events })));
}

const OPEN = 1;
const CONNECTING = 0;

test('Chromium: 12 EventSources of one origin all receive an event over HTTP/2, only 6 over HTTP/1.1', { timeout: TIMEOUT }, async (t) => {
  // HTTP/2 (HTTPS, ALPN h2): one connection, 12 streams.
  const tls = await selfSigned(t);
  const secure = await startTlsHub(t, tls);
  assert.match(secure.url, /^https:/);
  const topic = uniqueTopic('h2page');
  const h2 = await pageWithStreams(t, secure.url, topic);
  assert.equal(h2.protocol, 'h2');
  await waitUntil(async () => (await metric(secure.url, 'ssehub_http2_open_streams', { ca: tls.ca })) === PAGE_STREAMS, {
    what: `${PAGE_STREAMS} HTTP/2 streams open at the hub`,
  });
  await publish(secure.url, topic, 'to every stream', { ca: tls.ca });
  const overH2 = await waitUntil(async () => {
    const s = await streams(h2.page);
    return s.every((x) => x.events.length === 1) && s;
  }, { what: 'every EventSource to receive the event over HTTP/2' });
  assert.deepEqual(overH2.map((x) => x.events), Array(PAGE_STREAMS).fill(['to every stream']));
  assert.ok(overH2.every((x) => x.state === OPEN));

  // HTTP/1.1 (plain): Chromium's 6 connections per origin.
  const plain = await startHub(t, { store: 'memory' });
  const topic1 = uniqueTopic('h1page');
  const h1 = await pageWithStreams(t, plain.url, topic1);
  assert.equal(h1.protocol, 'http/1.1');
  await waitUntil(async () => (await streams(h1.page)).filter((x) => x.state === OPEN).length === 6, {
    what: '6 EventSources open over HTTP/1.1',
  });
  assert.equal(await metric(plain.url, 'ssehub_connections'), 6, 'the hub holds 6 streams of the page');
  await publish(plain.url, topic1, 'to the open ones');
  const overH1 = await waitUntil(async () => {
    const s = await streams(h1.page);
    return s.filter((x) => x.events.length === 1).length === 6 && s;
  }, { what: 'the 6 open EventSources to receive the event' });
  const waiting = overH1.filter((x) => x.state !== OPEN);
  assert.equal(waiting.length, PAGE_STREAMS - 6, 'the rest wait for a connection');
  assert.ok(waiting.every((x) => x.state === CONNECTING && x.events.length === 0), JSON.stringify(waiting));
  assert.equal(await metric(plain.url, 'ssehub_connections'), 6, 'still 6 streams at the hub');
});

/**
 * A fetch for the `eventsource` package that trusts `ca` (PEM): node's https with the CA, the
 * body handed over as a web stream as it arrives.
 */
function fetchTrusting(ca) {
  return (url, init = {}) =>
    new Promise((resolve, reject) => {
      const req = https.request(url, { method: init.method ?? 'GET', headers: init.headers, ca, agent: false }, (res) => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const v of [value].flat()) headers.append(name, v);
        }
        resolve(new Response(Readable.toWeb(res), { status: res.statusCode, headers }));
      });
      req.on('error', reject);
      init.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')));
      req.end();
    });
}

test('npm eventsource over HTTPS, trusting the test CA', { timeout: TIMEOUT }, async (t) => {
  const tls = await selfSigned(t);
  const hub = await startTlsHub(t, tls);
  const topic = uniqueTopic('tls-es');
  const es = new EventSource(`${hub.url}/topics/${topic}`, { fetch: fetchTrusting(tls.ca) });
  t.after(() => es.close());
  const got = [];
  es.addEventListener('message', (e) => got.push({ data: e.data, id: e.lastEventId }));
  await waitUntil(() => es.readyState === EventSource.OPEN, { what: 'the EventSource to open over HTTPS' });
  const id = await publish(hub.url, topic, 'over tls', { ca: tls.ca });
  await waitUntil(() => got.length === 1, { what: 'the event over HTTPS' });
  assert.deepEqual(got, [{ data: 'over tls', id }]);

  // Without the CA, the certificate is refused: the EventSource never opens.
  const stranger = new EventSource(`${hub.url}/topics/${topic}`);
  t.after(() => stranger.close());
  const failed = await new Promise((resolve) => stranger.addEventListener('error', resolve, { once: true }));
  assert.ok(failed, 'an error event');
  assert.notEqual(stranger.readyState, EventSource.OPEN);
});
