// End-to-end: a browser page streams a relayed answer with `fetch` (the README's snippet,
// crates/ssehub-http/console/demos/resumable-fetch.js, which the LLM demo
// serves), the test cuts its connection mid-answer, and the page
// resumes through ssehub and ends with every token once, in order.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';

import { launchBrowser, listenLocal } from './lib/browser.mjs';
import { metric, repoRoot, startHub, waitUntil } from './lib/hub.mjs';

const TIMEOUT = 90_000;
const TOKENS = 40;

/** An upstream on 127.0.0.1:0 that answers every POST with TOKENS events, 50 ms apart. */
async function startUpstream(t) {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (let i = 0; i < TOKENS && !res.destroyed; i++) {
        res.write(`event: token\ndata: t${i}\n\n`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      res.end();
    });
  });
  return listenLocal(t, server, 'the upstream');
}

test('a browser fetch of a relayed answer resumes after the test cuts it, every token once', { timeout: TIMEOUT }, async (t) => {
  const upstream = await startUpstream(t);
  const hub = await startHub(t, { store: 'memory', args: ['--relay', `/ai=${upstream}`] });
  const snippet = await fs.readFile(path.join(repoRoot, 'crates/ssehub-http/console/demos/resumable-fetch.js'), 'utf8');
  const readme = await fs.readFile(path.join(repoRoot, 'README.md'), 'utf8');
  assert.ok(readme.includes(snippet.trim()), 'README.md shows resumable-fetch.js verbatim');

  const browser = await launchBrowser(t);
  const page = await browser.newPage();
  const resumes = [];
  page.on('request', async (req) => {
    if (new URL(req.url()).pathname.startsWith('/topics/relay/')) {
      const headers = await req.allHeaders().catch(() => ({}));
      resumes.push(headers['last-event-id'] ?? null);
    }
  });
  await page.goto(`${hub.url}/healthz`); // same origin as the hub
  await page.addScriptTag({ content: snippet });
  // Every fetch of the page can be cut by the test (window.cut aborts the latest one): to the
  // page, what a dropped connection is.
  await page.evaluate(() => {
    const realFetch = window.fetch;
    const controllers = [];
    window.fetch = (url, init = {}) => {
      const controller = new AbortController();
      controllers.push(controller);
      return realFetch(url, { ...init, signal: controller.signal });
    };
    window.cut = () => controllers.at(-1).abort();
    window.rec = { events: [], end: null, error: null };
    streamAnswer('/ai/chat', { body: '{"prompt": "hello"}', headers: { 'content-type': 'application/json' } }, (e) =>
      window.rec.events.push(e),
    ).then(
      (end) => (window.rec.end = end),
      (e) => (window.rec.error = String(e)),
    );
  });
  const record = () => page.evaluate(() => window.rec);
  await waitUntil(async () => (await record()).events.length >= 5, { what: 'the first tokens' });
  await page.evaluate(() => window.cut());
  const done = await waitUntil(async () => {
    const r = await record();
    return r.end !== null || r.error !== null ? r : false;
  }, { timeoutMs: 30_000, what: 'the answer to end' });

  assert.equal(done.error, null);
  assert.deepEqual(done.end, { reason: 'done' });
  assert.deepEqual(
    done.events.map((e) => e.data),
    Array.from({ length: TOKENS }, (_, i) => `t${i}`),
    'every token once, in order',
  );
  assert.ok(done.events.every((e) => e.type === 'token'));
  assert.ok(resumes.length >= 1, 'the page resumed');
  assert.ok(resumes[0] !== null && resumes[0] !== 'earliest', `it resumed from its last id: ${resumes}`);
  assert.equal(await metric(hub.url, 'ssehub_relay_ended_total{relay="/ai",reason="done"}'), 1);
});
