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

/** Splits an event id `<8 hex log id>-<seq>` into {log, seq}; throws on any other shape. */
export function parseEventId(id) {
  const m = /^([0-9a-f]{8})-([1-9][0-9]*)$/.exec(id ?? '');
  if (!m) throw new Error(`not an ssehub event id (<8 hex>-<seq>): ${JSON.stringify(id)}`);
  return { log: m[1], seq: Number(m[2]) };
}

/**
 * Checks that `ids` all share one log id and have strictly increasing sequence
 * numbers; returns an error message, or null when they do.
 */
export function idsProblem(ids) {
  const parsed = ids.map(parseEventId);
  for (let i = 1; i < parsed.length; i++) {
    if (parsed[i].log !== parsed[0].log) return `log id changed at ${i}: ${JSON.stringify(ids)}`;
    if (parsed[i].seq <= parsed[i - 1].seq) return `seq not strictly increasing at ${i}: ${JSON.stringify(ids)}`;
  }
  return null;
}
