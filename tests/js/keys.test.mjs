// End-to-end: keys and snapshots in a real browser (headless Debian Chromium, via
// playwright-core) against the real `ssehub serve` binary — the cursors demo
// (/demos/cursors.html), a small collaborative page: each window publishes its pointer's
// position under its own key, and follows `/topics/demo/cursors?snapshot=true`. A window
// opened late must show every other window's current position at once (from the snapshot,
// with nobody moving), then their live moves; a window that closes deletes its key, and its
// cursor goes from the others' boards (the `ssehub-delete` event) and from later snapshots.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { launchBrowser } from './lib/browser.mjs';
import { repoRoot, startHub, waitUntil } from './lib/hub.mjs';

const TIMEOUT = 90_000;

/** Opens the cursors page; resolves once its stream is open. Returns {page, me}. */
async function openBoard(browser, hub) {
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  const response = await page.goto(`${hub.url}/demos/cursors.html`);
  assert.equal(response.status(), 200);
  await page.waitForFunction(() => document.getElementById('status').textContent !== '');
  const me = await page.evaluate(() => document.getElementById('board').dataset.me);
  return { page, me };
}

/** Moves `page`'s pointer to the fractions (fx, fy) of its board. */
async function moveTo(page, fx, fy) {
  const box = await page.locator('#board').boundingBox();
  await page.mouse.move(box.x + fx * box.width, box.y + fy * box.height, { steps: 3 });
}

/** The cursors `page` shows: id -> {x, y}. */
function cursorsOf(page) {
  return page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll('#board .cursor')].map((c) => [c.dataset.id, { x: Number(c.dataset.x), y: Number(c.dataset.y) }]),
    ),
  );
}

/** Waits until `page` shows exactly `want` (id -> [fx, fy], positions within 2 %). */
async function waitForCursors(page, want, what) {
  let last;
  await waitUntil(
    async () => {
      last = await cursorsOf(page);
      const ids = Object.keys(last).sort();
      if (JSON.stringify(ids) !== JSON.stringify(Object.keys(want).sort())) return false;
      return ids.every((id) => Math.abs(last[id].x - want[id][0]) < 0.02 && Math.abs(last[id].y - want[id][1]) < 0.02);
    },
    { timeoutMs: 15_000, intervalMs: 50, what: () => `${what}: ${JSON.stringify(last)} to be ${JSON.stringify(want)}` },
  );
}

for (const store of ['disk', 'memory']) {
  test(`browser (${store}): a late joiner sees every cursor at once, then live moves`, { timeout: TIMEOUT }, async (t) => {
    const hub = await startHub(t, { store });
    const browser = await launchBrowser(t);
    const alice = await openBoard(browser, hub);
    const bob = await openBoard(browser, hub);
    const carol = await openBoard(browser, hub);
    // Each moves a few times; only the last position of each counts.
    for (const [fx, fy] of [[0.1, 0.1], [0.2, 0.3], [0.25, 0.4]]) await moveTo(alice.page, fx, fy);
    await waitForCursors(bob.page, { [alice.me]: [0.25, 0.4] }, 'bob sees alice live');
    for (const [fx, fy] of [[0.9, 0.9], [0.7, 0.6]]) await moveTo(bob.page, fx, fy);
    await moveTo(carol.page, 0.5, 0.5);
    await waitForCursors(alice.page, { [bob.me]: [0.7, 0.6], [carol.me]: [0.5, 0.5] }, 'alice sees bob and carol');

    // Carol leaves: her key is deleted, and her cursor goes from the others' boards.
    await carol.page.close({ runBeforeUnload: true });
    await waitForCursors(alice.page, { [bob.me]: [0.7, 0.6] }, 'alice after carol left');
    await waitForCursors(bob.page, { [alice.me]: [0.25, 0.4] }, 'bob after carol left');

    // Dave opens the page late, with nobody moving: every current position at once.
    const dave = await openBoard(browser, hub);
    await waitForCursors(dave.page, { [alice.me]: [0.25, 0.4], [bob.me]: [0.7, 0.6] }, 'the late joiner, from the snapshot');
    // Then live moves.
    await moveTo(alice.page, 0.8, 0.2);
    await waitForCursors(dave.page, { [alice.me]: [0.8, 0.2], [bob.me]: [0.7, 0.6] }, 'the late joiner, live');
    if (store === 'disk') {
      // The README's picture of the demo, at the console tests' size (docs/img/).
      const img = path.join(repoRoot, 'docs', 'img');
      fs.mkdirSync(img, { recursive: true });
      await dave.page.setViewportSize({ width: 1280, height: 800 });
      await waitForCursors(dave.page, { [alice.me]: [0.8, 0.2], [bob.me]: [0.7, 0.6] }, 'the late joiner, resized');
      await dave.page.screenshot({ path: path.join(img, 'demo-cursors.png') });
    }
  });
}
