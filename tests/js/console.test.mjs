// End-to-end: the console at / and the demos at /demos/ in headless Chromium (playwright-core),
// against the real `ssehub serve` binary. Each page must load without a console error and do its
// job; the tests also take the screenshots of docs/img/ (1280x800) that the README shows.
//
// - console: a live view /?topic=T shows an event published from node, the topics list shows the
//   topic, the stats charts move.
// - console with keys: without a token it shows no topic name and no private event; with a token
//   granting `*` it shows both, and lists the connected Mercure subscriptions; with a lesser token,
//   not the private event.
// - demos (`serve --demo`): the clock ticks, the build log shows stdout and stderr and the exit
//   code from the start of the run, each inbox shows its own user's notifications only.
// - the LLM demo (`serve --demo`): the test cuts the answer mid-way, the page resumes, and the
//   whole answer arrives once, in order, as the hub stored it.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { launchBrowser } from './lib/browser.mjs';
import { mercureClaims, signHs256 } from './lib/jwt.mjs';
import { metric, repoRoot, request, sleep, startHub, waitUntil } from './lib/hub.mjs';

const TIMEOUT = 100_000;
const VIEWPORT = { width: 1280, height: 800 };
const SUBSCRIBER_KEY = 'js-console-subscriber-secret-0123456789abcdef';
const IMG = path.join(repoRoot, 'docs', 'img');

/** A page in a fresh context (its own sessionStorage) at 1280x800, recording its errors. */
async function openPage(t, browser) {
  const context = await browser.newContext({ viewport: VIEWPORT });
  t.after(() => context.close().catch(() => {}));
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => page.errors.push(`page: ${err.message}`));
  return page;
}

/** Goes to `url` and checks the page and every resource it loaded answered 200. */
async function visit(page, url) {
  const failed = [];
  page.on('response', (res) => {
    if (res.status() >= 400) failed.push(`${res.status()} ${res.url()}`);
  });
  const res = await page.goto(url, { waitUntil: 'load' });
  assert.equal(res.status(), 200, url);
  page.failedResponses = failed;
}

function noErrors(page, what) {
  assert.deepEqual(page.errors, [], `${what}: console errors`);
  assert.deepEqual(page.failedResponses ?? [], [], `${what}: failed requests`);
}

async function screenshot(page, name) {
  fs.mkdirSync(IMG, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(IMG, name), fullPage: false });
}

/** Checks that nothing of `page` spills sideways on a phone-sized window (390px wide). */
async function fitsPhone(page, what) {
  const before = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `${what} is ${width}px wide on a 390px window`);
  await page.setViewportSize(before);
}

/** Waits until `fn()` in the page is truthy; returns its value. */
function inPage(page, fn, arg, what, timeoutMs = 15_000) {
  return waitUntil(() => page.evaluate(fn, arg), { timeoutMs, intervalMs: 100, what });
}

async function publish(hubUrl, topic, data, { event, private: priv } = {}) {
  const query = new URLSearchParams();
  if (event) query.set('event', event);
  if (priv) query.set('private', '1');
  const res = await request('POST', `${hubUrl}/topics/${topic}?${query}`, { body: data });
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body).id;
}

test('console: a live view shows a published event, the topics list its topic, the charts move', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory' });
  const browser = await launchBrowser(t);
  const page = await openPage(t, browser);
  const before = await publish(hub.url, 'chat/e2e', 'published before the page opened', { event: 'greeting' });
  await visit(page, `${hub.url}/?topic=chat/e2e&from=earliest`);

  // History from `earliest`, then live: an event published now appears within seconds.
  await inPage(page, () => document.querySelectorAll('#live-events li').length === 1, null, 'the replayed event');
  const id = await publish(hub.url, 'chat/e2e', 'hello from node');
  const rows = await inPage(
    page,
    () => {
      const items = [...document.querySelectorAll('#live-events li')].map((li) => [...li.children].map((c) => c.textContent));
      return items.length === 2 ? items : false;
    },
    null,
    'the live event in the live view',
  );
  assert.deepEqual(rows, [
    [before, 'greeting', 'published before the page opened'],
    [id, 'message', 'hello from node'],
  ]);

  // The topics list shows the topic and its last event.
  const topicRow = await inPage(
    page,
    (id) => {
      const row = [...document.querySelectorAll('#topics-body tr')].find((tr) => tr.cells[0].textContent === 'chat/e2e');
      return row && row.cells[3].textContent === id ? [...row.cells].map((c) => c.textContent) : false;
    },
    id,
    'chat/e2e in the topics list',
  );
  assert.equal(topicRow[5], 'hello from node');

  // The charts move: each snapshot adds a point, up to a minute of them.
  const points = () => page.evaluate(() => Number(document.getElementById('c-events_in').dataset.points ?? 0));
  const first = await points();
  await inPage(page, (n) => Number(document.getElementById('c-events_in').dataset.points) > n, first, 'a new point on the chart');
  assert.notEqual(await page.textContent('#v-subscriptions'), '–');

  // The publish form: what it publishes reaches the live view.
  await page.fill('#pub-topic', 'chat/e2e');
  await page.fill('#pub-event', 'form');
  await page.fill('#pub-data', 'from the form');
  await page.fill('#pub-key', 'console');
  await page.click('#publish-form button[type=submit]');
  await inPage(page, () => /Published chat\/e2e with id/.test(document.getElementById('publish-result').textContent), null, 'the publish result');
  await inPage(page, () => [...document.querySelectorAll('#live-events .data')].some((d) => d.textContent === 'from the form'), null, 'the form event');

  // A binary event is shown as such: its size and a hex preview, not its base64 as text.
  const binary = Buffer.from([0x00, 0x0d, 0x0a, 0xff, ...Array(20).fill(0x41)]);
  const binRes = await request('POST', `${hub.url}/topics/chat/e2e?event=thumb`, {
    body: binary,
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(binRes.status, 200, binRes.body);
  const binRow = await inPage(
    page,
    (id) => {
      const li = [...document.querySelectorAll('#live-events li')].find((l) => l.children[0].textContent === id);
      return li ? [...li.children].map((c) => c.textContent) : false;
    },
    JSON.parse(binRes.body).id,
    'the binary event in the live view',
  );
  assert.deepEqual(binRow.slice(1), ['thumb.b64', 'binary, 24 bytes: 00 0d 0a ff 41 41 41 41 41 41 41 41 41 41 41 41 …']);

  // A few more topics and events, for the screenshot.
  for (const [topic, data] of [['orders/eu', '{"order":1042,"total":"19.90"}'], ['alerts/disk', 'sda1 at 91%'], ['chat/room1', 'hi all']]) {
    await publish(hub.url, topic, data);
  }
  await inPage(page, () => document.querySelectorAll('#topics-body tr').length >= 4, null, 'four topics listed');
  await sleep(1200);
  noErrors(page, 'the console');
  await screenshot(page, 'console.png');

  // On a phone-sized window nothing spills sideways (the tables scroll inside their box).
  await fitsPhone(page, 'the console');
});

test('console: with keys, no token shows no topic name and no private event', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory', args: ['--subscriber-key', SUBSCRIBER_KEY] });
  await publish(hub.url, 'secret/plans', 'the private plan', { private: true });
  await publish(hub.url, 'public/news', 'public news');
  const browser = await launchBrowser(t);

  // No token: the console asks for one, lists no topic, and the live view gets no private event.
  const anonymous = await openPage(t, browser);
  await anonymous.goto(`${hub.url}/?topic=secret/plans&from=earliest`);
  await inPage(anonymous, () => !document.getElementById('access').hidden, null, 'the token form');
  assert.match(await anonymous.textContent('#access-reason'), /401 unauthorized/);
  await inPage(anonymous, () => /Watching/.test(document.getElementById('live-state').textContent), null, 'the live view to open');
  await sleep(1500);
  const text = await anonymous.evaluate(() => document.body.innerText);
  assert.ok(!text.includes('the private plan'), text);
  assert.ok(!text.includes('public/news'), 'a topic name shown without a token');
  assert.equal(await anonymous.locator('#topics-body tr').count(), 0);
  assert.equal(await anonymous.locator('#live-events li').count(), 0);
  // The only errors are the refused stats stream.
  assert.ok(anonymous.errors.every((e) => /401/.test(e)), anonymous.errors.join('\n'));

  // A token that grants other topics: the stats are refused (403), the private event still unseen.
  const lesser = await openPage(t, browser);
  const lesserToken = signHs256(SUBSCRIBER_KEY, mercureClaims({ subscribe: ['public/{x}'] }));
  await lesser.goto(`${hub.url}/?topic=secret/plans&from=earliest#token=${lesserToken}`);
  await inPage(lesser, () => /403 forbidden/.test(document.getElementById('access-reason').textContent), null, 'the 403');
  await inPage(lesser, () => /Watching/.test(document.getElementById('live-state').textContent), null, 'the live view to open');
  await sleep(1000);
  assert.equal(await lesser.locator('#live-events li').count(), 0);
  // The token left the address bar.
  assert.ok(!lesser.url().includes('token='), lesser.url());

  // A token granting `*`: topic names, and the private event in the live view.
  const admin = await openPage(t, browser);
  const all = signHs256(SUBSCRIBER_KEY, mercureClaims({ subscribe: ['*'] }));
  await visit(admin, `${hub.url}/?topic=secret/plans&from=earliest#token=${all}`);
  await inPage(admin, () => [...document.querySelectorAll('#live-events .data')].some((d) => d.textContent === 'the private plan'), null, 'the private event');
  await inPage(admin, () => [...document.querySelectorAll('#topics-body tr')].some((tr) => tr.cells[0].textContent === 'public/news'), null, 'the topics list');
  // Private events are counted, never listed by topic.
  assert.equal(await admin.locator('#topics-body tr', { hasText: 'secret/plans' }).count(), 0);
  assert.equal(await admin.isHidden('#access'), true);
  // The connected Mercure subscriptions: a Mercure stream of this page is listed.
  const book = 'https://example.com/books/1';
  await admin.evaluate(
    ({ book, all }) => {
      window.__mercure = new EventSource(`/.well-known/mercure?topic=${encodeURIComponent(book)}&authorization=${all}`);
    },
    { book, all },
  );
  await inPage(admin, () => window.__mercure.readyState === 1, null, 'the Mercure stream to open');
  await admin.click('#mercure-load');
  await inPage(admin, () => /1 active subscription/.test(document.getElementById('mercure-state').textContent), null, 'the subscriptions list');
  assert.equal(await admin.textContent('#mercure-body td'), book);
  noErrors(admin, 'the console with a token');
});

test('demos: the clock ticks, the build log runs from its start, each inbox shows its own user only', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory', args: ['--demo'] });
  const printed = await waitUntil(
    () => {
      const lines = hub.proc.stdoutLines.filter((l) => l.startsWith('ssehub demo:'));
      return lines.length >= 4 ? lines : false;
    },
    { what: 'the demo links' },
  );
  const link = (what) => printed.find((l) => l.includes(what)).split(': ').pop();
  const browser = await launchBrowser(t);

  const index = await openPage(t, browser);
  await visit(index, `${hub.url}/demos/`);
  const demos = await index.locator('.demo-list a').evaluateAll((links) => links.map((a) => a.pathname));
  for (const demo of ['clock', 'build', 'inbox', 'cursors', 'llm']) assert.ok(demos.includes(`/demos/${demo}.html`), `${demo} in ${demos}`);
  noErrors(index, 'the demos index');
  await screenshot(index, 'demos.png');
  await fitsPhone(index, 'the demos index');

  const clock = await openPage(t, browser);
  await visit(clock, `${hub.url}/demos/clock.html`);
  await inPage(clock, () => Number(document.getElementById('clock').dataset.ticks ?? 0) >= 2, null, 'two ticks');
  assert.match(await clock.textContent('#clock'), /\d/);
  noErrors(clock, 'the clock');
  await screenshot(clock, 'demo-clock.png');
  await fitsPhone(clock, 'the clock');

  // The build log: wait for the first run to end, then open it late — it still starts at `start`.
  await waitUntil(
    async () => {
      const res = await request('GET', `${hub.url}/metrics`);
      const m = /^ssehub_events_published_total (\d+)/m.exec(res.body);
      return m && Number(m[1]) > 25;
    },
    { timeoutMs: 20_000, intervalMs: 200, what: 'the first build to run' },
  );
  const build = await openPage(t, browser);
  await visit(build, `${hub.url}/demos/build.html`);
  const done = await inPage(
    build,
    () => {
      const log = document.getElementById('log');
      return log.dataset.exit !== undefined ? { text: log.textContent, exit: log.dataset.exit, stderr: log.querySelectorAll('.stderr').length } : false;
    },
    null,
    'a build with its exit code',
    30_000,
  );
  assert.match(done.text, /^\$ make test\n/, 'the run from its first line');
  assert.match(done.text, /exited with code (0|2)\n$/);
  assert.ok(done.stderr >= 2, 'stderr lines in their colour');
  noErrors(build, 'the build log');
  await screenshot(build, 'demo-build.png');
  await fitsPhone(build, 'the build log');

  // The inboxes, opened from the printed links.
  const alice = await openPage(t, browser);
  await visit(alice, link("alice's inbox"));
  const bob = await openPage(t, browser);
  await visit(bob, link("bob's inbox"));
  for (const page of [alice, bob]) {
    await inPage(page, () => /live/.test(document.getElementById('status').textContent), null, 'the inbox to open');
  }
  // Bob sends alice a notification from his page's form.
  await bob.fill('#to', 'alice');
  await bob.fill('#text', 'lunch at noon?');
  await bob.click('#send button[type=submit]');
  await inPage(bob, () => /Sent to alice/.test(document.getElementById('sent').textContent), null, 'the send result');
  await publish(hub.url, 'demo/users/bob/notifications', JSON.stringify({ text: 'for bob only', time: Date.now() }), { event: 'notification', private: true });
  await inPage(alice, () => document.getElementById('inbox').textContent.includes('lunch at noon?'), null, "alice's notification");
  await inPage(bob, () => document.getElementById('inbox').textContent.includes('for bob only'), null, "bob's notification");
  await sleep(500);
  const aliceText = await alice.textContent('#inbox');
  const bobText = await bob.textContent('#inbox');
  assert.ok(!aliceText.includes('for bob only') && !aliceText.includes('(for bob)'), aliceText);
  assert.ok(!bobText.includes('lunch at noon?') && !bobText.includes('(for alice)'), bobText);
  noErrors(alice, "alice's inbox");
  noErrors(bob, "bob's inbox");
  await screenshot(alice, 'demo-inbox.png');
  await fitsPhone(alice, 'the inbox');

  // The console from the printed link, with the demos' traffic.
  const consolePage = await openPage(t, browser);
  await visit(consolePage, link('the console'));
  await inPage(consolePage, () => [...document.querySelectorAll('#topics-body tr')].some((tr) => tr.cells[0].textContent === 'demo/clock'), null, 'demo/clock listed');
  noErrors(consolePage, 'the console with the demo token');
});

test('the LLM demo: cut mid-answer, it resumes, and every token arrives once, in order', { timeout: TIMEOUT }, async (t) => {
  const hub = await startHub(t, { store: 'memory', args: ['--demo'] });
  const browser = await launchBrowser(t);
  const page = await openPage(t, browser);
  const answers = []; // each POST's SSEHub-Topic
  const resumes = []; // each resume's Last-Event-ID
  page.on('response', (res) => {
    if (new URL(res.url()).pathname === '/demo-ai/chat') answers.push(res.headers()['ssehub-topic']);
  });
  page.on('request', async (req) => {
    if (new URL(req.url()).pathname.startsWith('/topics/relay/')) resumes.push((await req.allHeaders())['last-event-id'] ?? null);
  });
  await visit(page, `${hub.url}/demos/llm.html`);
  await page.fill('#prompt', 'Why do dropped connections lose tokens?');
  await page.click('#ask button[type=submit]');
  await inPage(page, () => document.querySelectorAll('#answer span').length >= 8, null, 'the first tokens');
  await page.click('#cut');
  const check = await inPage(page, () => document.querySelector('#check [data-whole]')?.dataset.whole, null, 'the answer to end', 30_000);
  assert.equal(check, 'true', await page.textContent('#check'));
  assert.match(await page.textContent('#status'), /^Done/);
  assert.match(await page.textContent('#check'), /^✓ All \d+ tokens, each once, in order: \d+ before the cut, [1-9]\d* resumed after id \S+\.$/);
  assert.ok(await page.locator('#answer .resumed').count() > 0, 'the resumed tokens are highlighted');

  // The page shows exactly the answer the hub stored from the fake model.
  assert.equal(answers.length, 1, 'one POST, never a second');
  assert.match(answers[0], /^relay\/[0-9a-f]{32}$/);
  assert.ok(resumes.length >= 1 && resumes[0] && resumes[0] !== 'earliest', `resumed from its last id: ${resumes}`);
  const stored = await request('GET', `${hub.url}/topics/${answers[0]}?lastEventId=earliest`);
  const tokens = stored.body
    .split('\n')
    .filter((l) => l.startsWith('data: {"n"'))
    .map((l) => JSON.parse(l.slice(6)).text);
  const shown = await page.evaluate(() => [...document.querySelectorAll('#answer span')].map((s) => s.textContent));
  assert.deepEqual(shown, tokens);
  assert.ok(tokens.join('').startsWith('You asked: “Why do dropped connections lose tokens?”. '), tokens.join(''));
  assert.equal(await metric(hub.url, 'ssehub_relay_ended_total{relay="/demo-ai",reason="done"}'), 1);
  noErrors(page, 'the LLM demo');
  await screenshot(page, 'demo-llm.png');
  await fitsPhone(page, 'the LLM demo');
});
