// An SSE client over fetch(), for the console's live views.
//
// The demos use the browser's EventSource, which is all most pages need. The console uses this
// instead because it must show every event whatever its type (an EventSource only hands a page
// the types it listens for by name), send the token in an Authorization header, and say why a
// stream was refused (an EventSource never sees the status or the JSON error). It reads the
// stream as the WHATWG HTML standard says (section "Server-sent events"):
// CR, LF or CRLF line ends, `data` lines joined with LF, the last event id kept across
// reconnections and sent back as Last-Event-ID, `retry` obeyed.

/**
 * Opens `url` and calls `onEvent({type, data, id})` for each event until `close()`.
 * Reconnects after a network error or the end of the stream, resuming after the last id;
 * stops on an HTTP error and calls `onRefused(status, {error, message})`.
 * `onState(text)` hears 'open', 'reconnecting' and 'closed'.
 */
export function openStream(url, { token, lastEventId = '', onEvent, onRefused, onState = () => {} }) {
  let lastId = lastEventId;
  let retryMs = 2000;
  let closed = false;
  let controller;

  async function connect() {
    controller = new AbortController();
    const headers = { accept: 'text/event-stream' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (lastId) headers['last-event-id'] = lastId;
    let response;
    try {
      response = await fetch(url, { headers, signal: controller.signal, cache: 'no-store' });
    } catch {
      return again();
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({ error: 'http_' + response.status, message: response.statusText }));
      closed = true;
      onState('closed');
      onRefused?.(response.status, body);
      return;
    }
    onState('open');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = { type: '', data: [], id: null };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        // Every complete line; a CR at the very end may be half of a CRLF, so it waits.
        const lines = buffer.split(/\r\n|\n|\r(?!$)/);
        buffer = lines.pop();
        for (const line of lines) event = take(line, event);
      }
    } catch {
      // aborted or cut: reconnect below unless closed
    }
    again();
  }

  // One line of the stream; returns the event being built.
  function take(line, event) {
    if (line === '') {
      if (event.id !== null) lastId = event.id;
      if (event.data.length > 0) {
        onEvent({ type: event.type || 'message', data: event.data.join('\n'), id: event.id ?? lastId });
      }
      return { type: '', data: [], id: null };
    }
    if (line.startsWith(':')) return event;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') event.data.push(value);
    else if (field === 'event') event.type = value;
    else if (field === 'id' && !value.includes('\0')) event.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    return event;
  }

  function again() {
    if (closed) return;
    onState('reconnecting');
    setTimeout(() => {
      if (!closed) connect();
    }, retryMs);
  }

  connect();
  return {
    close() {
      closed = true;
      controller?.abort();
      onState('closed');
    },
    get lastEventId() {
      return lastId;
    },
  };
}
