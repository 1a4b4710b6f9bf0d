// Helpers for the end-to-end tests: start the real `ssehub serve` binary, publish over plain
// HTTP, and wait for things with a deadline.
//
// Every child process started here is tracked by PID and killed (SIGKILL) when the test process
// exits, whatever happened; every wait has a timeout. Every temporary data directory made here is
// removed when its test ends, or at the latest when the test process exits.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The root of the ssehub repository (tests/js/lib/../../..). */
export const repoRoot = path.resolve(here, '..', '..', '..');

/** The binary under test: `$SSEHUB_BIN`, or `target/debug/ssehub` in the repository. */
export const hubBin = process.env.SSEHUB_BIN
  ? path.resolve(process.env.SSEHUB_BIN)
  : path.join(repoRoot, 'target', 'debug', 'ssehub');

const LISTENING = /^ssehub listening on (https?:\/\/127\.0\.0\.1:(\d+))$/;
const LOG_LIMIT = 64 * 1024;

/** Children still alive, by PID; killed on exit so no hub outlives the tests. */
const live = new Map();
/** Temporary data directories not yet removed; removed on exit at the latest. */
const tempDirs = new Set();
process.on('exit', () => {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});

/**
 * Makes a fresh, empty directory under the OS temporary directory (for a hub's durable store, or
 * the files of another server a test starts); removed on exit at the latest.
 */
export async function makeTempDir(prefix = 'ssehub-js-') {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Removes a directory made by `makeTempDir`. */
export async function removeTempDir(dir) {
  await fs.promises.rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Has the child process `child` (started elsewhere) killed too when the test process exits. */
export function killOnExit(child) {
  live.set(child.pid, child);
  child.once('exit', () => live.delete(child.pid));
}

/** Resolves with `promise`, or rejects after `ms` with an error naming `what`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check()` (sync or async) every `intervalMs` until it returns a truthy value, which is
 * returned; throws after `timeoutMs` with `what` (a string, or a function giving one) and the last
 * value/error in the message.
 */
export async function waitUntil(check, { timeoutMs = 10_000, intervalMs = 25, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= end) {
      const label = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}; last: ${describe(last)}`);
    }
    await sleep(intervalMs);
  }
}

function describe(value) {
  if (value instanceof Error) return value.stack || String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** One running `ssehub serve` process. */
class HubProcess {
  constructor(child) {
    this.child = child;
    this.pid = child.pid;
    this.stdoutLines = [];
    this.log = '';
    this.exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(this.pid);
        this.exited = { code, signal };
        resolve(this.exited);
      });
    });
    child.once('error', (err) => {
      this.spawnError = err;
    });
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      this.#append(chunk);
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        this.stdoutLines.push(pending.slice(0, nl).replace(/\r$/, ''));
        pending = pending.slice(nl + 1);
        this.onLine?.();
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => this.#append(chunk));
  }

  #append(chunk) {
    this.log += chunk;
    if (this.log.length > LOG_LIMIT) this.log = this.log.slice(-LOG_LIMIT);
  }

  /** Waits for the listening line; resolves with {url, port}. */
  listening(timeoutMs) {
    const found = new Promise((resolve, reject) => {
      const look = () => {
        for (const line of this.stdoutLines) {
          const m = LISTENING.exec(line);
          if (m) return resolve({ url: m[1], port: Number(m[2]) });
        }
      };
      this.onLine = look;
      look();
      this.exit.then(({ code, signal }) =>
        reject(new Error(`ssehub exited (code ${code}, signal ${signal}) before listening:\n${this.log}`)),
      );
    });
    return withTimeout(found, timeoutMs, `ssehub to print "ssehub listening on http://127.0.0.1:PORT"; output so far:\n${this.log}`)
      .finally(() => {
        this.onLine = undefined;
      });
  }

  /** Sends `signal`, waits up to `timeoutMs` for the exit; SIGKILLs and throws if it hangs. */
  async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
    if (this.exited) return this.exited;
    try {
      process.kill(this.pid, signal);
    } catch {
      // exited in between
    }
    try {
      return await withTimeout(this.exit, timeoutMs, `ssehub (pid ${this.pid}) to exit after ${signal}`);
    } catch (err) {
      this.kill();
      await withTimeout(this.exit, 5_000, `ssehub (pid ${this.pid}) to exit after SIGKILL`);
      throw new Error(`${err.message}\nssehub output:\n${this.log}`);
    }
  }

  kill() {
    if (this.exited) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function spawnHub(listen, extraArgs) {
  const args = ['serve', '--listen', listen, ...extraArgs];
  const child = spawn(hubBin, args, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_BACKTRACE: '1' },
  });
  if (child.pid === undefined) {
    throw new Error(`could not start ${hubBin} (set SSEHUB_BIN or run cargo build -p ssehub)`);
  }
  live.set(child.pid, child);
  return new HubProcess(child);
}

/**
 * Starts `ssehub serve --listen 127.0.0.1:0` plus options, and waits until it is listening.
 *
 * Options:
 * - `store`: `'disk'` (the default, like the hub's own default) runs the durable store with
 *   `--store disk --data-dir DIR`, where DIR is a fresh directory made with `fs.mkdtemp` under
 *   `os.tmpdir()` and removed when the test ends; `'memory'` runs `--store memory` (no history
 *   across a restart, so a resuming client gets the `ssehub-gap` notice).
 * - `retryMs` (passed as --retry-ms, default 200; `null` for the hub's default),
 *   `retryJitterMs` (--retry-jitter-ms; the hub's default when not given), `heartbeatSecs`,
 *   `corsOrigins` (each one a --cors-origin), `args` (any further arguments), `startTimeoutMs`.
 *
 * Returns {url, port, store, dataDir, stop(signal), restart(), kill(), proc}: `stop` sends the
 * signal (SIGTERM by default) and resolves with {code, signal} of the exit; `restart` stops the
 * hub with SIGTERM if it runs, checks it exited 0, and starts a new one with the same arguments
 * on the same port and, for the durable store, the same data directory. `dataDir` is undefined
 * for the in-memory store.
 * Pass the test context `t` as the first argument so the hub is killed (and its data directory
 * removed) when the test ends.
 */
export async function startHub(t, options = {}) {
  const {
    store = 'disk',
    retryMs = 200,
    retryJitterMs,
    heartbeatSecs,
    corsOrigins = [],
    args = [],
    startTimeoutMs = 15_000,
  } = options;
  if (store !== 'disk' && store !== 'memory') {
    throw new Error(`startHub: store must be 'disk' or 'memory', got ${JSON.stringify(store)}`);
  }
  const dataDir = store === 'disk' ? await makeTempDir() : undefined;
  const extra = ['--store', store];
  if (dataDir !== undefined) extra.push('--data-dir', dataDir);
  if (retryMs !== null) extra.push('--retry-ms', String(retryMs));
  if (retryJitterMs !== undefined) extra.push('--retry-jitter-ms', String(retryJitterMs));
  if (heartbeatSecs !== undefined) extra.push('--heartbeat-secs', String(heartbeatSecs));
  for (const origin of corsOrigins) extra.push('--cors-origin', origin);
  extra.push(...args);

  const hub = {
    proc: undefined,
    url: undefined,
    port: undefined,
    store,
    dataDir,
    /** Every process this handle started, oldest first. */
    procs: [],
    async stop(signal = 'SIGTERM', timeoutMs) {
      return hub.proc.stop(signal, timeoutMs);
    },
    kill() {
      for (const p of hub.procs) p.kill();
    },
    async restart() {
      const exit = await hub.stop('SIGTERM');
      if (exit.code !== 0) {
        throw new Error(`ssehub exited with ${JSON.stringify(exit)} after SIGTERM, expected code 0:\n${hub.proc.log}`);
      }
      await launch(`127.0.0.1:${hub.port}`);
      return hub;
    },
  };

  async function launch(listen) {
    // Rebinding a port just released can fail for a moment; retry a bounded number of times.
    let lastErr;
    for (let attempt = 0; attempt < 20; attempt++) {
      const proc = spawnHub(listen, extra);
      hub.procs.push(proc);
      try {
        const { url, port } = await proc.listening(startTimeoutMs);
        hub.proc = proc;
        hub.url = url;
        hub.port = port;
        return;
      } catch (err) {
        lastErr = err;
        proc.kill();
        await withTimeout(proc.exit, 5_000, 'ssehub to exit after SIGKILL').catch(() => {});
        if (!/address (already )?in use|AddrInUse|os error 98/i.test(proc.log)) throw err;
        await sleep(250);
      }
    }
    throw lastErr;
  }

  t?.after(async () => {
    hub.kill();
    try {
      await Promise.all(hub.procs.map((p) => withTimeout(p.exit, 5_000, `ssehub pid ${p.pid} to exit`)));
    } finally {
      if (dataDir !== undefined) await removeTempDir(dataDir);
    }
  });
  await launch('127.0.0.1:0');
  return hub;
}

/**
 * One HTTP request with a fresh connection (no keep-alive pool, so a restarted hub never sees a
 * stale socket). Resolves with {status, headers, body}. An `https:` URL is checked against `ca`
 * (PEM), the test's own certificate authority.
 */
export function request(method, url, { body, headers = {}, timeoutMs = 10_000, ca } = {}) {
  const client = new URL(url).protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, headers, agent: false, timeout: timeoutMs, ca }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** `POST /topics/{topic}[?event=TYPE]` with `data` as the body; returns the new event's id. */
export async function publish(hubUrl, topic, data, { event, ca } = {}) {
  const url = new URL(`/topics/${topic}`, hubUrl);
  if (event !== undefined) url.searchParams.set('event', event);
  const res = await request('POST', url, {
    ca,
    body: data,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
  if (res.status !== 200) {
    throw new Error(`POST ${url} -> ${res.status} ${res.body}, expected 200 {"id": ...}`);
  }
  const parsed = JSON.parse(res.body);
  if (typeof parsed.id !== 'string' || parsed.id === '') {
    throw new Error(`POST ${url} -> ${res.body}, expected {"id": "<non-empty string>"}`);
  }
  return parsed.id;
}

/** `POST /publish` with a JSON array of {topic, data, event?}; returns the ids. */
export async function publishBatch(hubUrl, events) {
  const url = new URL('/publish', hubUrl);
  const res = await request('POST', url, {
    body: JSON.stringify(events),
    headers: { 'content-type': 'application/json' },
  });
  if (res.status !== 200) {
    throw new Error(`POST ${url} -> ${res.status} ${res.body}, expected 200 {"ids": [...]}`);
  }
  const parsed = JSON.parse(res.body);
  if (!Array.isArray(parsed.ids) || parsed.ids.length !== events.length) {
    throw new Error(`POST ${url} -> ${res.body}, expected {"ids": [${events.length} ids]}`);
  }
  return parsed.ids;
}

/**
 * `GET /metrics`, parsed: a Map from each sample's name (with its labels, as written, e.g.
 * `ssehub_rejected_requests_total{reason="not_found"}`) to its value as a number.
 */
export async function metrics(hubUrl, { ca } = {}) {
  const url = new URL('/metrics', hubUrl);
  const res = await request('GET', url, { ca });
  if (res.status !== 200) throw new Error(`GET ${url} -> ${res.status} ${res.body}, expected 200`);
  const samples = new Map();
  for (const line of res.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

/** One sample of `GET /metrics` (see `metrics`); throws if the hub does not report it. */
export async function metric(hubUrl, name, { ca } = {}) {
  const samples = await metrics(hubUrl, { ca });
  if (!samples.has(name)) throw new Error(`GET /metrics has no ${name}: ${JSON.stringify([...samples.keys()])}`);
  return samples.get(name);
}

/** A topic name no other test uses. */
export function uniqueTopic(prefix) {
  return `${prefix}/${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
