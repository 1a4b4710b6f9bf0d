// A per-user inbox: one private topic per user, one token per user.
//
// The link `ssehub serve --demo` prints is /demos/inbox.html#user=alice&token=… : the fragment
// never reaches any server. The page subscribes to its user's topic with the token; the hub
// delivers the private events the token grants, and nothing else — another user's
// notifications never reach this page, whatever it asks for.

const inbox = document.getElementById('inbox');
const status = document.getElementById('status');
let source;

function open(user, token) {
  source?.close();
  inbox.replaceChildren();
  const topic = `demo/users/${encodeURIComponent(user)}/notifications`;
  const query = new URLSearchParams({ lastEventId: 'earliest' });
  if (token) query.set('authorization', token);
  source = new EventSource(`/topics/${topic}?${query}`);
  status.textContent = `${user}'s inbox: connecting…`;
  source.addEventListener('open', () => {
    status.textContent = `${user}'s inbox: live`;
  });
  source.addEventListener('notification', (event) => {
    const { text, time } = JSON.parse(event.data);
    const li = document.createElement('li');
    const when = document.createElement('time');
    const date = new Date(time); // milliseconds since 1970
    when.dateTime = date.toISOString();
    when.textContent = date.toLocaleString();
    li.append(when, text);
    inbox.prepend(li);
  });
  source.addEventListener('error', () => {
    // A refused token (401) closes the EventSource for good; a network error reconnects.
    status.textContent = source.readyState === EventSource.CLOSED
      ? `${user}'s inbox: refused (is the token valid?)`
      : `${user}'s inbox: reconnecting…`;
  });
}

document.getElementById('login').addEventListener('submit', (e) => {
  e.preventDefault();
  open(e.target.user.value.trim(), e.target.token.value.trim());
});

// Sending: a private event on the recipient's topic. A hub with a publisher key would need a
// publisher token here; the demo hub lets local pages publish without one.
document.getElementById('send').addEventListener('submit', async (e) => {
  e.preventDefault();
  const to = e.target.to.value.trim();
  const data = JSON.stringify({ text: e.target.text.value, time: Date.now() });
  const response = await fetch(`/topics/demo/users/${encodeURIComponent(to)}/notifications?private=1&event=notification`, {
    method: 'POST',
    body: data,
  });
  const body = await response.json();
  document.getElementById('sent').textContent = response.ok
    ? `Sent to ${to} (id ${body.id}).`
    : `Not sent: ${body.message}`;
});

const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get('user')) {
  document.getElementById('user').value = fragment.get('user');
  open(fragment.get('user'), fragment.get('token') ?? '');
}
