// Collaborative cursors on a keyed topic: one key per window, the latest position per key.

const board = document.getElementById('board');
const status = document.getElementById('status');
const me = crypto.randomUUID().slice(0, 8);
const hue = Math.floor(Math.random() * 360);
const cursors = new Map(); // key -> element

// Follow everyone: the latest position of every key first, then live.
const source = new EventSource('/topics/demo/cursors?snapshot=true');
source.onmessage = (event) => {
  const { id, x, y, hue: h, gone } = JSON.parse(event.data);
  if (id === me) return;
  let dot = cursors.get(id);
  if (gone) {
    dot?.remove();
    cursors.delete(id);
  } else {
    if (!dot) {
      dot = Object.assign(document.createElement('span'), { className: 'cursor', title: id });
      dot.style.setProperty('--h', h);
      board.append(dot);
      cursors.set(id, dot);
    }
    // Positions are fractions of the board, so windows of any size agree.
    dot.style.setProperty('--x', x);
    dot.style.setProperty('--y', y);
  }
  status.textContent = `${cursors.size} other cursor(s)`;
};

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
  navigator.sendBeacon(`/topics/demo/cursors?key=${me}`, JSON.stringify({ id: me, gone: true }));
});
