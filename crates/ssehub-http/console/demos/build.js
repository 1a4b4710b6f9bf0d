// A build log in the browser: the events `ssehub exec` publishes, from the start of the run.
//
//   stdout / stderr   one line of output each
//   exit              {"code": 0} or {"signal": 9}, once the command is over
//   start             (the demo's loop only) {"build": 7}: a new run begins
//
// `lastEventId=earliest` replays the retained history first, then goes live: opened late, the
// page still gets every line of the current run.

const log = document.getElementById('log');
const status = document.getElementById('status');

const source = new EventSource('/topics/demo/build/log?lastEventId=earliest');

function line(text, className) {
  const span = document.createElement('span');
  span.className = className;
  span.textContent = text + '\n';
  log.append(span);
  log.scrollTop = log.scrollHeight;
}

source.addEventListener('start', (event) => {
  // A new run: the older runs in the history are not this one.
  const { build } = JSON.parse(event.data);
  log.replaceChildren();
  log.dataset.build = String(build);
  delete log.dataset.exit;
  status.textContent = `build #${build} running…`;
});

source.addEventListener('stdout', (event) => line(event.data, 'stdout'));
source.addEventListener('stderr', (event) => line(event.data, 'stderr'));

source.addEventListener('exit', (event) => {
  const { code, signal } = JSON.parse(event.data);
  const ok = code === 0;
  line(signal ? `killed by signal ${signal}` : `exited with code ${code}`, `exit ${ok ? 'ok' : 'failed'}`);
  log.dataset.exit = String(signal ? 128 + signal : code);
  status.textContent = `build #${log.dataset.build ?? '?'} ${ok ? 'passed' : 'failed'}; the next run starts shortly`;
  // A real build page would close the EventSource here: the build is over. The demo keeps it
  // open for the next run of its loop.
});

source.addEventListener('error', () => {
  status.textContent = 'reconnecting…';
});
