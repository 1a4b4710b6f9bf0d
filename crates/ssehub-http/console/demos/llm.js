// An answer streamed through the relay, cut, and resumed: no token lost, none twice.
//
// streamAnswer() (resumable-fetch.js, the README's snippet) POSTs the question, reads the SSE
// answer, and after a cut GETs /topics/<SSEHub-Topic> with the Last-Event-ID of the last token
// it got, until the ssehub-end event. This page only shows it: the tokens that came after the
// cut are highlighted, and the fake model numbers its tokens ({n, of, text}) so that the page
// can check that each arrived once, in order.

const form = document.getElementById('ask');
const cut = document.getElementById('cut');
const status = document.getElementById('status');
const answer = document.getElementById('answer');
const check = document.getElementById('check');

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const controller = new AbortController(); // aborts the POST only, as a dropped connection would
  const seen = []; // the tokens ({n, of, text}), in arrival order
  let lastId = '';
  let cutAt = null; // when cut: the id of the last token before it, and how many had come
  answer.replaceChildren();
  check.textContent = '';
  status.textContent = 'Asking…';
  cut.onclick = () => {
    cutAt = { id: lastId, count: seen.length };
    cut.disabled = true;
    controller.abort();
    status.textContent = `Cut after ${seen.length} tokens. Resuming: GET /topics/relay/… with Last-Event-ID: ${lastId}`;
    answer.append(marker(`⟲ resumed after id ${lastId}`));
  };
  form.querySelector('[type=submit]').disabled = true;

  const onToken = (event) => {
    const token = JSON.parse(event.data);
    const span = document.createElement('span');
    span.textContent = token.text;
    if (cutAt !== null) span.className = 'resumed';
    answer.append(span);
    seen.push(token);
    lastId = event.id;
    if (cutAt === null) {
      cut.disabled = false; // a token came: there is something to cut
      status.textContent = `Streaming: ${seen.length} of ${token.of} tokens`;
    }
  };
  try {
    const end = await streamAnswer(
      '/demo-ai/chat',
      { body: JSON.stringify({ prompt: form.prompt.value }), headers: { 'content-type': 'application/json' }, signal: controller.signal },
      onToken,
    );
    status.textContent = end.reason === 'done' ? 'Done: ssehub-end {"reason":"done"}' : `Ended early: ${end.reason} ${end.message}`;
    check.replaceChildren(verdict(seen, cutAt));
  } catch (error) {
    status.textContent = `Failed: ${error.message}`;
  }
  cut.disabled = true;
  form.querySelector('[type=submit]').disabled = false;
});

// A visible mark in the answer where the cut was.
function marker(text) {
  const mark = document.createElement('mark');
  mark.textContent = ` ${text} `;
  return mark;
}

// Whether the tokens are 0, 1, … of-1, each once, in order; and how many came after the cut.
function verdict(seen, cutAt) {
  const of = seen[0]?.of ?? 0;
  const whole = seen.length === of && seen.every((t, i) => t.n === i);
  const p = document.createElement('span');
  p.className = whole ? 'ok' : 'bad';
  p.dataset.whole = String(whole);
  const resumed = cutAt ? `: ${cutAt.count} before the cut, ${seen.length - cutAt.count} resumed after id ${cutAt.id}` : '';
  p.textContent = whole
    ? `✓ All ${of} tokens, each once, in order${resumed}.`
    : `✗ ${seen.length} tokens for ${of}: ${seen.map((t) => t.n).join(' ')}`;
  return p;
}
