// Headless Debian Chromium driven by playwright-core, and an EventSource inside a page.

import http from 'node:http';

import { chromium } from 'playwright-core';

import { waitUntil, withTimeout } from './hub.mjs';

/** Debian's Chromium (`apt-get install chromium`); playwright-core never downloads a browser. */
export const chromiumPath = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches headless Chromium (a fresh temporary profile each time) and closes it when the test
 * ends.
 */
export async function launchBrowser(t) {
  const browser = await withTimeout(
    chromium.launch({ executablePath: chromiumPath, headless: true, args: ARGS, timeout: 30_000 }),
    45_000,
    `Chromium (${chromiumPath}) to start`,
  );
  t.after(() => withTimeout(browser.close(), 15_000, 'Chromium to close').catch(() => {}));
  return browser;
}

/**
 * Opens `window.__es = new EventSource(url)` in `page` and records, in `window.__rec`, every
 * event of the given types as {type, data, id} in arrival order, plus open and error counts.
 */
export async function openEventSource(page, url, types) {
  await page.evaluate(
    ({ url, types }) => {
      const rec = { events: [], opens: 0, errors: 0 };
      const es = new EventSource(url);
      for (const type of types) {
        es.addEventListener(type, (e) => rec.events.push({ type: e.type, data: e.data, id: e.lastEventId }));
      }
      es.addEventListener('open', () => rec.opens++);
      es.addEventListener('error', () => rec.errors++);
      window.__es = es;
      window.__rec = rec;
    },
    { url, types },
  );
}

/** The page's record plus the EventSource's readyState. */
export function pageRecord(page) {
  return page.evaluate(() => ({ ...window.__rec, readyState: window.__es.readyState }));
}

/** Polls the page's record until `pred(record)` holds; returns the record. */
export function waitInPage(page, pred, { timeoutMs = 15_000, what = 'the page' } = {}) {
  let last;
  return waitUntil(
    async () => {
      last = await pageRecord(page);
      return pred(last) ? last : false;
    },
    { timeoutMs, intervalMs: 50, what: () => `${what} (page record: ${JSON.stringify(last)})` },
  );
}

/** A tiny web server on 127.0.0.1:0 that answers every GET with `html`; closed on test end. */
export async function servePage(t, html) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  });
  return listenLocal(t, server, 'the page server');
}

/** Starts `server` on 127.0.0.1:0, closes it when the test ends; its URL. */
export async function listenLocal(t, server, what) {
  await withTimeout(
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    }),
    5_000,
    `${what} to listen`,
  );
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${server.address().port}`;
}
