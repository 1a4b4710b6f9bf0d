// POSTs to an ssehub relay and streams the answer's events to onEvent, resuming after a cut
// (GET /topics/<SSEHub-Topic> with Last-Event-ID) until the answer's ssehub-end event.
// Resolves with that event's data: {reason: "done"} or {reason, message}.
async function streamAnswer(url, init, onEvent) {
  let response = await fetch(url, { ...init, method: 'POST' });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const topic = response.headers.get('SSEHub-Topic');
  const resumeUrl = new URL(`/topics/${topic}`, response.url);
  let lastId = '';
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const event of readEvents(response)) {
        attempt = 0;
        lastId = event.id;
        if (event.type === 'ssehub-end') return JSON.parse(event.data);
        onEvent(event);
      }
    } catch {
      // The connection was cut (or the resume request failed): resume below.
    }
    if (!topic || attempt >= 10) throw new Error('the answer was cut');
    await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** Math.min(attempt, 5)));
    response = await fetch(resumeUrl, {
      headers: { 'Last-Event-ID': lastId || 'earliest' },
    }).catch(() => null);
  }
}

// The events of an event-stream response, as {type, data, id}.
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { type: 'message', data: [], id: '' };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const line of lines.map((l) => l.replace(/\r$/, ''))) {
      if (line === '') {
        if (event.data.length > 0) yield { type: event.type, data: event.data.join('\n'), id: event.id };
        event = { type: 'message', data: [], id: event.id };
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') event.data.push(value);
      else if (field === 'event') event.type = value;
      else if (field === 'id') event.id = value;
    }
  }
}
