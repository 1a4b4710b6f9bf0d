// Collaborative cursors on a keyed topic: one key per window, the latest position per key.
//
// Each window publishes its position to `demo/cursors` under its own key (`?key=`); the hub
// keeps the newest event of every key, and a window that subscribes with `snapshot=true`
// starts with every cursor where it is now, then follows the moves live. Keys are not sent
// to subscribers, so each position carries its window's id in its data. A window that goes
// away deletes its key (`delete=true`): subscribers get an `ssehub-delete` event whose data
// is the key, and later windows never see the cursor.

const board = document.getElementById('board');
const status = document.getElementById('status');
const me = crypto.randomUUID().slice(0, 8);
const hue = Math.floor(Math.random() * 360);
const cursors = new Map(); // key -> element
board.dataset.me = me;

function show() {
  status.textContent = `${cursors.size} other cursor(s)`;
}

function remove(id) {
  cursors.get(id)?.remove();
  cursors.delete(id);
  show();
}

// Follow everyone: the latest position of every key first, then live.
const source = new EventSource('/topics/demo/cursors?snapshot=true');
source.onmessage = (event) => {
  const { id, x, y, hue: h } = JSON.parse(event.data);
  if (id === me) return;
  let dot = cursors.get(id);
  if (!dot) {
    dot = Object.assign(document.createElement('span'), { className: 'cursor', title: id });
    dot.dataset.id = id;
    dot.style.setProperty('--h', h);
    board.append(dot);
    cursors.set(id, dot);
  }
  // Positions are fractions of the board, so windows of any size agree.
  dot.style.setProperty('--x', x);
  dot.style.setProperty('--y', y);
  dot.dataset.x = x;
  dot.dataset.y = y;
  show();
};
// A window that left: its key's tombstone, with the key as data.
source.addEventListener('ssehub-delete', (event) => remove(event.data));

// Publish my position under my key, at most every 50 ms.
let pending = null;
function send(position) {
  const first = pending === null;
  pending = position;
  if (!first) return;
  setTimeout(async () => {
    const body = JSON.stringify({ id: me, hue, ...pending });
    pending = null;
    await fetch(`/topics/demo/cursors?key=${me}`, { method: 'POST', body });
  }, 50);
}

board.addEventListener('pointermove', (e) => {
  const r = board.getBoundingClientRect();
  send({ x: (e.clientX - r.left) / r.width, y: (e.clientY - r.top) / r.height });
});

addEventListener('pagehide', () => {
  navigator.sendBeacon(`/topics/demo/cursors?key=${me}&delete=true`, '');
});
show();
