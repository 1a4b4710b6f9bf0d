// An answer streamed through the relay, resumed after a cut.
//
// 1. POST the question to the relay route: the answer is an SSE stream, and its header
//    SSEHub-Topic names the topic where the hub stores every piece (relay/<capability>).
// 2. Read it, keeping the id of the last piece.
// 3. Cut (or a network error): follow that topic with an EventSource from the last id — the
//    hub replays what was missed, then goes live — until the `ssehub-end` event.

const answer = document.getElementById('answer');
const status = document.getElementById('status');
const cut = document.getElementById('cut');

let lastId = '';
let topic = '';
let ended = false;

function piece(data, id) {
  answer.textContent += data;
  if (id) lastId = id;
}

async function ask(prompt) {
  answer.textContent = '';
  lastId = '';
  ended = false;
  const controller = new AbortController();
  cut.onclick = () => controller.abort();
  cut.disabled = false;
  status.textContent = 'asking…';
  try {
    const response = await fetch('/ai', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ prompt }),
      signal: controller.signal,
    });
    topic = response.headers.get('SSEHub-Topic');
    status.textContent = `answering (topic ${topic})…`;
    await readEvents(response.body, (event) => {
      if (event.type === 'ssehub-end') ended = true;
      else piece(event.data, event.id);
    });
  } catch {
    // cut: resume below
  }
  cut.disabled = true;
  if (!ended && topic) resume();
  else status.textContent = 'done';
}

// The rest of the answer, from the last piece received: what a reload of the page would do too.
function resume() {
  status.textContent = `cut after ${lastId || 'nothing'}: resuming from the topic…`;
  const query = new URLSearchParams({ lastEventId: lastId || 'earliest' });
  const source = new EventSource(`/topics/${topic}?${query}`);
  source.onmessage = (event) => piece(event.data, event.lastEventId);
  source.addEventListener('ssehub-end', () => {
    source.close();
    status.textContent = 'done (resumed)';
  });
}

// A small reader of an SSE body (fetch can POST; EventSource cannot): events of `data`, `event`
// and `id` lines, one blank line ending each.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { type: 'message', data: [], id: '' };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\n|\r(?!$)/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (event.data.length) onEvent({ type: event.type, data: event.data.join('\n'), id: event.id });
        event = { type: 'message', data: [], id: '' };
        continue;
      }
      const [field, ...rest] = line.split(':');
      const value = rest.join(':').replace(/^ /, '');
      if (field === 'data') event.data.push(value);
      else if (field === 'event') event.type = value;
      else if (field === 'id') event.id = value;
    }
  }
}

document.getElementById('ask').addEventListener('submit', (e) => {
  e.preventDefault();
  ask(e.target.prompt.value);
});
