// The clock: one EventSource, one listener. `ssehub serve --demo` publishes
// {"time": 1767268800000} (milliseconds since 1970) to demo/clock every second, with the event type `tick`.

const clock = document.getElementById('clock');
const status = document.getElementById('status');

// Live only: a clock has no use for the ticks it missed.
const source = new EventSource('/topics/demo/clock');

source.addEventListener('tick', (event) => {
  const { time } = JSON.parse(event.data);
  clock.textContent = new Date(time).toLocaleTimeString();
  clock.dataset.ticks = String(Number(clock.dataset.ticks ?? 0) + 1);
  status.textContent = `event ${event.lastEventId}`;
});

// The browser reconnects by itself; say so meanwhile.
source.addEventListener('error', () => {
  status.textContent = 'reconnecting…';
});
