// End-to-end: private Mercure updates in a real browser (headless Debian Chromium, via
// playwright-core). The page subscribes through the hub's Mercure endpoint with the
// `mercureAuthorization` cookie, as a Mercure client in a browser does; the hub is the real
// `ssehub serve` binary with a publisher and a subscriber key.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { launchBrowser, openEventSource, pageRecord, waitInPage } from './lib/browser.mjs';
import { mercureClaims, signHs256 } from './lib/jwt.mjs';
import { request, startHub } from './lib/hub.mjs';

const TIMEOUT = 90_000;
const PUBLISHER_KEY = 'js-test-publisher-secret-0123456789abcdef';
const SUBSCRIBER_KEY = 'js-test-subscriber-secret-0123456789abcdef';

/**
 * `POST /.well-known/mercure`, form-encoded, with a publisher token; returns the update's id
 * (the 200 answer's text/plain body).
 */
async function mercurePublish(hubUrl, token, fields) {
  const url = new URL('/.well-known/mercure', hubUrl);
  const res = await request('POST', url, {
    body: new URLSearchParams(fields).toString(),
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Bearer ${token}`,
    },
  });
  const what = `POST ${url} ${JSON.stringify(fields)} -> ${res.status} ${res.headers['content-type']} ${res.body}`;
  assert.equal(res.status, 200, what);
  assert.match(res.headers['content-type'] ?? '', /^text\/plain/, what);
  const id = res.body.trim();
  assert.notEqual(id, '', what);
  return id;
}

test('browser: the mercureAuthorization cookie lets a page receive its private updates, and only those', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, {
    store: 'memory',
    args: ['--publisher-key', PUBLISHER_KEY, '--subscriber-key', SUBSCRIBER_KEY],
  });
  const topic = 'https://example.com/users/alice/notifications';
  const publisher = signHs256(PUBLISHER_KEY, mercureClaims({ publish: ['*'] }));
  const cookies = {
    // A URI template for alice, an exact topic for bob.
    alice: signHs256(SUBSCRIBER_KEY, mercureClaims({ subscribe: ['https://example.com/users/alice/{rest}'] })),
    bob: signHs256(SUBSCRIBER_KEY, mercureClaims({ subscribe: ['https://example.com/users/bob/notifications'] })),
    anonymous: null,
  };
  const browser = await launchBrowser(t);
  const subscribePath = `/.well-known/mercure?topic=${encodeURIComponent(topic)}`;

  // One browser context (its own cookie jar) per user; each page is on the hub's origin.
  const pages = {};
  const sentCookies = {};
  for (const [who, token] of Object.entries(cookies)) {
    const context = await browser.newContext();
    t.after(() => context.close().catch(() => {}));
    const page = await context.newPage();
    const res = await page.goto(`${hub.url}/healthz`);
    assert.equal(res.status(), 200);
    if (token !== null) {
      await context.addCookies([{ name: 'mercureAuthorization', value: token, url: hub.url }]);
    }
    page.on('request', async (req) => {
      if (new URL(req.url()).pathname === '/.well-known/mercure') {
        const headers = await req.allHeaders().catch(() => ({}));
        sentCookies[who] = headers.cookie ?? null;
      }
    });
    await openEventSource(page, subscribePath, ['message']);
    pages[who] = page;
  }
  for (const [who, page] of Object.entries(pages)) {
    await waitInPage(page, (r) => r.readyState === 1, { what: `${who}'s EventSource on the Mercure endpoint to open` });
  }
  // The browser sent the cookie itself, on the EventSource's own request.
  assert.equal(sentCookies.alice, `mercureAuthorization=${cookies.alice}`);
  assert.equal(sentCookies.bob, `mercureAuthorization=${cookies.bob}`);
  assert.equal(sentCookies.anonymous, null);

  const privateId = await mercurePublish(hub.url, publisher, { topic, data: 'for alice only', private: 'on' });
  const publicId = await mercurePublish(hub.url, publisher, { topic, data: 'for everyone' });
  const forAlice = { type: 'message', data: 'for alice only', id: privateId };
  const forEveryone = { type: 'message', data: 'for everyone', id: publicId };

  // The stream is in order: once the public update is there, the private one is too, or never.
  for (const page of Object.values(pages)) {
    await waitInPage(page, (r) => r.events.some((e) => e.data === 'for everyone'), { what: 'the public update' });
  }
  await new Promise((r) => setTimeout(r, 200)); // room for anything unexpected to show up
  assert.deepEqual((await pageRecord(pages.alice)).events, [forAlice, forEveryone], 'alice gets her private update');
  assert.deepEqual((await pageRecord(pages.bob)).events, [forEveryone], "bob's token does not match alice's topic");
  assert.deepEqual((await pageRecord(pages.anonymous)).events, [forEveryone], 'no cookie, no private update');
  for (const [who, page] of Object.entries(pages)) {
    assert.equal((await pageRecord(page)).errors, 0, `${who}'s EventSource had no error`);
  }
});
