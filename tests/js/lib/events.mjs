// Recording what an EventSource (the npm package's) receives, and waiting for it.

import { waitUntil } from './hub.mjs';

/** The event type of the in-band notice the hub sends when it cannot resume from an id. */
export const GAP = 'ssehub-gap';

/**
 * Listens on `es` for each of `types` ("message" included if wanted) and records every event,
 * in arrival order, as {type, data, id}. Also counts `open` and `error` events.
 */
export function record(es, types = ['message', GAP]) {
  const rec = { events: [], opens: 0, errors: [] };
  for (const type of types) {
    es.addEventListener(type, (e) => rec.events.push({ type: e.type, data: e.data, id: e.lastEventId }));
  }
  es.addEventListener('open', () => rec.opens++);
  es.addEventListener('error', (e) => rec.errors.push(e.message ?? String(e)));
  /** Waits until `count` events (optionally only those matching `filter`) have arrived. */
  rec.waitForCount = (count, { timeoutMs = 10_000, filter = () => true } = {}) =>
    waitUntil(
      () => {
        const got = rec.events.filter(filter);
        return got.length >= count ? got : false;
      },
      { timeoutMs, what: () => `${count} events (have ${JSON.stringify(rec.events)}; errors ${JSON.stringify(rec.errors)})` },
    );
  /** Waits until an event matching `pred` has arrived; returns it. */
  rec.waitFor = (pred, { timeoutMs = 10_000, what = 'an event' } = {}) =>
    waitUntil(() => rec.events.find(pred), {
      timeoutMs,
      what: () => `${what} (have ${JSON.stringify(rec.events)}; errors ${JSON.stringify(rec.errors)})`,
    });
  return rec;
}

/** Waits until `es` is open (readyState 1). */
export function waitOpen(es, rec, timeoutMs = 10_000) {
  return waitUntil(() => es.readyState === 1, {
    timeoutMs,
    what: () => `the EventSource to ${es.url} to open (errors ${JSON.stringify(rec?.errors ?? [])})`,
  });
}
