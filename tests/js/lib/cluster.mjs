// A throwaway cluster for the end-to-end tests: one real `redis-server`, `ssehub serve --cluster`
// nodes on it, and Debian's `haproxy` in front, all on 127.0.0.1 with free ports. The same setup
// as the Rust test crates/ssehub/tests/cluster_lb.rs (see its haproxy.rs for the config, and
// crates/ssehub-cluster/src/testing.rs for Redis's flags).
//
// Every process is started here and killed (SIGKILL, by its PID) when its test ends, or at the
// latest when the test process exits; their files are in temporary directories removed with them.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { killOnExit, makeTempDir, metric, removeTempDir, request, startHub, waitUntil, withTimeout } from './hub.mjs';

/** A port free on 127.0.0.1 a moment ago (the servers started here cannot be asked for port 0). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** The path of `name` on $PATH or in /usr/sbin (where Debian puts haproxy), or throws. */
function findProgram(name) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error(`${name} is not installed (scripts/test-js installs it with apt-get)`);
}

/**
 * Starts `program args` with its output kept (the last 16 KiB) for error messages, its files in
 * `dir`; kills it when the test ends, then removes `dir`. Returns {child, exit, log()}.
 */
function startServer(t, program, args, dir) {
  const child = spawn(findProgram(program), args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${program}`);
  killOnExit(child);
  let log = '';
  const keep = (chunk) => {
    log = (log + chunk).slice(-16 * 1024);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(async () => {
    child.kill('SIGKILL');
    await withTimeout(exit, 5_000, `${program} (pid ${child.pid}) to exit after SIGKILL`);
    await removeTempDir(dir);
  });
  return { child, exit, log: () => log };
}

/** Whether something on 127.0.0.1:`port` answers Redis's `PING` with `+PONG`. */
function pings(port) {
  return new Promise((resolve) => {
    const conn = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok) => {
      conn.destroy();
      resolve(ok);
    };
    conn.setTimeout(1_000, () => done(false));
    conn.on('error', () => done(false));
    conn.on('connect', () => conn.write('PING\r\n'));
    conn.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/**
 * Starts a `redis-server` on a free port, with an append-only file fsync'd before each answer
 * (what docs/cluster.md recommends: an acknowledged event is on disk), no RDB snapshots, its
 * files in a fresh temporary directory; waits until it answers PING. Returns {url, port}.
 */
export async function startRedis(t) {
  const port = await freePort();
  const dir = await makeTempDir('ssehub-js-redis-');
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--daemonize', 'no', '--dir', dir];
  args.push('--save', '', '--appendonly', 'yes', '--appendfsync', 'always');
  const redis = startServer(t, 'redis-server', args, dir);
  await waitUntil(
    async () => {
      if (redis.child.exitCode !== null || redis.child.signalCode !== null) {
        throw new Error(`redis-server exited before answering PING:\n${redis.log()}`);
      }
      return pings(port);
    },
    { timeoutMs: 10_000, intervalMs: 50, what: () => `redis-server on port ${port} to answer PING; output:\n${redis.log()}` },
  );
  return { url: `redis://127.0.0.1:${port}`, port };
}

/**
 * The haproxy config of crates/ssehub/tests/haproxy.rs, for a balancer on `port` over `servers`
 * (`127.0.0.1:PORT` each). Why each line matters for SSE: `timeout server`/`timeout tunnel` bound
 * how long a stream may go without a byte, so they are far longer than a test; the request is not
 * buffered (a subscribe has no body to wait for); a server found dead by its health check
 * (`/healthz`, every 100 ms) takes no new streams, and a connection refused by one that is dead
 * but not yet found so is retried on another (`redispatch`). An EventSource that gets any answer
 * but 200 (haproxy's 503 when it has no server) gives up for good, so this matters.
 */
function haproxyConfig(port, servers) {
  return [
    'global',
    '    maxconn 2000',
    '',
    'defaults',
    '    mode http',
    '    timeout connect 1s',
    '    timeout client 120s',
    '    timeout server 120s',
    '    timeout tunnel 120s',
    '    retries 3',
    '    option redispatch',
    '    no option http-buffer-request',
    '',
    'frontend sse',
    `    bind 127.0.0.1:${port}`,
    '    default_backend nodes',
    '',
    'backend nodes',
    '    balance roundrobin',
    '    option httpchk GET /healthz',
    '    http-check expect status 200',
    ...servers.map((server, i) => `    server node${i} ${server} check inter 100ms fall 1 rise 1`),
    '',
  ].join('\n');
}

/**
 * Starts Debian's `haproxy` (in the foreground, `-db`) on a free port in front of the hubs at
 * `urls` (`http://127.0.0.1:PORT`), round robin, and waits until it answers `/healthz`.
 * Returns {url, port}.
 */
export async function startHaproxy(t, urls) {
  const port = await freePort();
  const dir = await makeTempDir('ssehub-js-haproxy-');
  const file = path.join(dir, 'haproxy.cfg');
  await fs.promises.writeFile(file, haproxyConfig(port, urls.map((u) => new URL(u).host)));
  const haproxy = startServer(t, 'haproxy', ['-db', '-f', file], dir);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (haproxy.child.exitCode !== null || haproxy.child.signalCode !== null) {
        throw new Error(`haproxy exited:\n${haproxy.log()}`);
      }
      return (await request('GET', `${url}/healthz`, { timeoutMs: 2_000 })).status === 200;
    },
    { timeoutMs: 10_000, intervalMs: 50, what: () => `haproxy on port ${port} to answer /healthz; output:\n${haproxy.log()}` },
  );
  return { url, port };
}

/**
 * Starts one `redis-server`, `nodes` hubs `ssehub serve --cluster redis://127.0.0.1:PORT` on it
 * (with `startHub`: `hubOptions` go to it, e.g. `retryMs`), and haproxy in front of them.
 * Returns {redis, nodes, lb}: `nodes` are `startHub` handles (`nodes[i].stop('SIGKILL')` kills
 * one), `lb` is {url, port} of haproxy.
 */
export async function startCluster(t, { nodes = 3, ...hubOptions } = {}) {
  const redis = await startRedis(t);
  const hubs = [];
  for (let i = 0; i < nodes; i++) {
    // A node keeps no history of its own (--store and --data-dir are not used with --cluster):
    // 'memory' only spares startHub making a data directory.
    hubs.push(await startHub(t, { ...hubOptions, store: 'memory', args: ['--cluster', redis.url, '--cluster-name', 'js'] }));
  }
  const lb = await startHaproxy(t, hubs.map((h) => h.url));
  return { redis, nodes: hubs, lb };
}

/** The open SSE streams (`ssehub_connections`) of each of `nodes`; 0 for a node that is gone. */
export function streamsPerNode(nodes) {
  return Promise.all(nodes.map((n) => (n.proc.exited ? 0 : metric(n.url, 'ssehub_connections'))));
}
