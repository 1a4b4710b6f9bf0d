// The console: the hub's figures (the /console/stats stream), its topics, a live view of any
// topic or pattern (/?topic=T&from=earliest), a publish form and Mercure's subscriptions.
// Plain DOM code, no framework: every text from the hub goes in with textContent, never as HTML.

import { sparkline } from './charts.js';
import { openStream } from './stream.js';
import { adoptTokenFromFragment, authHeaders, getToken, setToken } from './token.js';

const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat('en');

/** A <td> (or any tag) holding `text`, with `className`. */
function cell(text, className = '', tag = 'td') {
  const el = document.createElement(tag);
  el.textContent = text;
  if (className) el.className = className;
  return el;
}

// ---- access: the token a hub with keys asks for ------------------------------------------

function askForToken(reason) {
  $('access').hidden = false;
  $('access-reason').textContent = reason;
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setToken('subscriber', $('token-input').value);
  $('token-input').value = '';
  $('access').hidden = true;
  startStats();
  if (live) watch(live.request);
});

// ---- the hub's figures --------------------------------------------------------------------

const CHARTS = {
  events_in: 'Events in per second',
  events_out: 'Events out per second',
  connections: 'Open streams',
  subscriptions: 'Subscriptions',
  slow_cuts: 'Slow-consumer cuts per second',
};

let stats;

function startStats() {
  stats?.close();
  stats = openStream('/console/stats', {
    token: getToken('subscriber'),
    onState: (state) => {
      $('stats-state').textContent = state === 'open' ? 'live' : state;
    },
    onRefused: (status, body) => {
      $('stats-state').textContent = 'not shown';
      askForToken(`The hub refused its figures (${status} ${body.error}): ${body.message}`);
    },
    onEvent: (event) => {
      if (event.type === 'stats') showStats(JSON.parse(event.data));
    },
  });
}

function showStats(s) {
  for (const [key, label] of Object.entries(CHARTS)) {
    const values = s.series[key];
    $(`v-${key}`).textContent = number.format(values.at(-1) ?? 0);
    sparkline($(`c-${key}`), values, label);
  }
  $('v-retained').textContent = `${number.format(s.store.retained)} events`;
  $('v-oldest').textContent = s.store.oldest ?? 'none';
  $('v-newest').textContent = s.store.newest ?? 'none';
  $('v-retention').textContent = describeRetention(s.store.retention);
  $('v-published').textContent = number.format(s.published);
  $('v-delivered').textContent = number.format(s.delivered);
  $('v-cuts-total').textContent = number.format(s.slow_cuts);
  $('v-private').textContent = number.format(s.private_events);
  $('overview').dataset.updated = String(s.time_ms);
  showTopics(s.topics, s.sampled);
}

function describeRetention(r) {
  if (!r) return 'unknown';
  const parts = [];
  if (r.max_events) parts.push(`${number.format(r.max_events)} events`);
  if (r.max_bytes) parts.push(`${number.format(Math.round(r.max_bytes / 1048576))} MiB`);
  if (r.max_age_secs) parts.push(`${number.format(Math.round(r.max_age_secs / 3600))} h`);
  if (r.topics?.length) parts.push(`${r.topics.length} topic rule(s)`);
  return parts.length ? parts.join(', ') : 'unbounded';
}

function showTopics(topics, sampled) {
  const rows = topics.map((t) => {
    const tr = document.createElement('tr');
    const name = document.createElement('td');
    const link = document.createElement('a');
    link.href = viewLink({ topics: [t.topic], from: 'earliest' });
    link.textContent = t.topic;
    name.append(link);
    tr.append(
      name,
      cell(t.rate.toFixed(1), 'num'),
      cell(number.format(t.events), 'num'),
      cell(t.last.id),
      cell(t.last.type || 'message'),
      cell(t.last.data + (t.last.cut ? '…' : ''), 'data'),
    );
    return tr;
  });
  $('topics-body').replaceChildren(...rows);
  $('topics-empty').hidden = topics.length > 0;
  $('topics-sampled').hidden = !sampled;
}

// ---- live view of a topic or pattern --------------------------------------------------------

/** The shareable address of a live view. */
function viewLink({ topics, from }) {
  const query = new URLSearchParams();
  for (const topic of topics) query.append('topic', topic);
  if (from) query.set('from', from);
  return `/?${query}#live`;
}

let live;

function watch(request) {
  live?.stream.close();
  const { topics, from } = request;
  const query = new URLSearchParams();
  for (const topic of topics) query.append('topic', topic);
  const list = $('live-events');
  list.replaceChildren();
  const link = $('live-link');
  link.href = viewLink(request);
  link.hidden = false;
  history.replaceState(null, '', viewLink(request));
  $('live-stop').disabled = false;
  const stream = openStream(`/subscribe?${query}`, {
    token: getToken('subscriber'),
    lastEventId: from,
    onState: (state) => {
      $('live-state').textContent = `${state === 'open' ? 'Watching' : state}: ${topics.join(', ')}`;
    },
    onRefused: (status, body) => {
      $('live-state').textContent = `Refused (${status} ${body.error}): ${body.message}`;
      if (status === 401) askForToken(body.message);
    },
    onEvent: (event) => {
      const li = document.createElement('li');
      if (event.type === 'ssehub-gap') li.className = 'gap';
      li.append(cell(event.type === 'ssehub-gap' ? '(no id)' : event.id, 'id', 'span'), cell(event.type, 'type', 'span'), renderData(event));
      list.append(li);
      // Bounded: the newest 500 events stay on the page.
      while (list.childElementCount > 500) list.firstElementChild.remove();
      if (list.scrollHeight - list.scrollTop - list.clientHeight < 80) list.scrollTop = list.scrollHeight;
    },
  });
  live = { request, stream };
}

/** The longest hex preview of a binary event's bytes in the live view. */
const HEX_PREVIEW_BYTES = 16;

/**
 * How an event's data is shown. Gap notices are explained; binary events — the hub marks them
 * with a type ending in `.b64` and sends their bytes as base64 — are shown as their size and a
 * hex preview of the first bytes (the bytes themselves may be no text at all); everything else
 * is text.
 */
function renderData(event) {
  const span = cell(event.data, 'data', 'span');
  if (event.type === 'ssehub-gap') {
    try {
      const gap = JSON.parse(event.data);
      span.textContent = `history could not fill a gap (${gap.reason}): asked after ${gap.requested}, ` +
        `the replay goes on from ${gap.oldest ?? 'the live events'}`;
    } catch {
      // shown as sent
    }
  } else if (event.type.endsWith('.b64')) {
    try {
      const bytes = Uint8Array.from(atob(event.data), (c) => c.charCodeAt(0));
      const hex = Array.from(bytes.subarray(0, HEX_PREVIEW_BYTES), (b) => b.toString(16).padStart(2, '0')).join(' ');
      const more = bytes.length > HEX_PREVIEW_BYTES ? ' …' : '';
      span.textContent = `binary, ${bytes.length} bytes${hex ? `: ${hex}${more}` : ''}`;
      span.classList.add('binary');
    } catch {
      // not base64 after all: shown as sent
    }
  }
  return span;
}

$('live-from').addEventListener('change', () => {
  $('live-id').hidden = $('live-from').value !== 'id';
  $('live-id').required = $('live-from').value === 'id';
});

$('live-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const topics = $('live-topic').value.split(',').map((t) => t.trim()).filter(Boolean);
  const choice = $('live-from').value;
  const from = choice === 'id' ? $('live-id').value.trim() : choice;
  watch({ topics, from });
});

$('live-stop').addEventListener('click', () => {
  live?.stream.close();
  live = undefined;
  $('live-stop').disabled = true;
  $('live-state').textContent = 'Not watching.';
});

/** Opens the live view a link asks for: `/?topic=T&topic=U&from=earliest|ID`. */
function openLinkedView() {
  const query = new URLSearchParams(location.search);
  const topics = query.getAll('topic').filter(Boolean);
  if (topics.length === 0) return;
  const from = query.get('from') ?? '';
  $('live-topic').value = topics.join(', ');
  const choice = from === '' || from === 'earliest' ? from : 'id';
  $('live-from').value = choice;
  $('live-id').hidden = choice !== 'id';
  if (choice === 'id') $('live-id').value = from;
  watch({ topics, from });
}

// ---- publish -----------------------------------------------------------------------------

$('pub-token').value = getToken('publisher');

$('publish-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  setToken('publisher', $('pub-token').value);
  const event = { topic: $('pub-topic').value.trim(), data: $('pub-data').value };
  if ($('pub-event').value) event.event = $('pub-event').value;
  if ($('pub-private').checked) event.private = true;
  // A key makes the event its key's newest value (snapshots start with it; README "Keys and
  // snapshots").
  if ($('pub-key').value) event.key = $('pub-key').value;
  const result = $('publish-result');
  result.classList.remove('bad');
  try {
    const response = await fetch('/publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders('publisher') },
      body: JSON.stringify([event]),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(`${response.status} ${body.error}: ${body.message}`);
    result.textContent = `Published ${event.topic} with id ${body.ids[0]}.`;
  } catch (err) {
    result.classList.add('bad');
    result.textContent = `Not published: ${err.message}`;
  }
});

// ---- Mercure subscriptions -----------------------------------------------------------------

$('mercure-load').addEventListener('click', async () => {
  const state = $('mercure-state');
  state.classList.remove('bad');
  state.textContent = 'Loading…';
  try {
    const response = await fetch('/.well-known/mercure/subscriptions', { headers: authHeaders('subscriber'), cache: 'no-store' });
    const body = await response.json();
    if (!response.ok) throw new Error(`${response.status} ${body.error}: ${body.message}`);
    const rows = (body.subscriptions ?? []).map((s) => {
      const tr = document.createElement('tr');
      tr.append(cell(s.topic), cell(s.subscriber), cell(s.payload === undefined ? '' : JSON.stringify(s.payload), 'data'));
      return tr;
    });
    $('mercure-body').replaceChildren(...rows);
    $('mercure-table').hidden = rows.length === 0;
    state.textContent = `${rows.length} active subscription(s) as of event ${body.lastEventID}.`;
  } catch (err) {
    state.classList.add('bad');
    state.textContent = `Cannot list them: ${err.message}`;
  }
});

adoptTokenFromFragment();
startStats();
openLinkedView();
