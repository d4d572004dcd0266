// Real processes for the end-to-end tests: a private redis-server, goring
// instances and (for TURN tests) a coturn, each on a free loopback port.
// Every process is started here and stopped here, by its PID; a test run
// leaves nothing behind even when it fails (stopAll in a finally block and on
// process exit).
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const goringBinary = process.env.GORING_BINARY ?? path.resolve('build/goring');
export const repoRoot = process.env.GORING_SOURCE_DIR ?? path.resolve('.');
export const jwtSecret = 'e2e_jwt_secret';

const children = new Set();

/** A directory for logs, screenshots and other artefacts of one test file. */
export function artefactDir(name) {
  const base = process.env.GORING_E2E_ARTEFACTS ?? path.join(os.tmpdir(), 'goring-e2e');
  const dir = path.join(base, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` (sync or async) until it returns a truthy value or `ms` pass. */
export async function waitFor(what, check, ms = 10_000, every = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(every);
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function startChild(name, argv, env, logPath) {
  const log = fs.openSync(logPath, 'a');
  const child = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  const entry = { name, child, logPath, exited: false, code: null };
  child.on('exit', (code, signal) => {
    entry.exited = true;
    entry.code = code ?? (signal ? `signal ${signal}` : null);
  });
  child.on('error', (err) => {
    entry.exited = true;
    entry.code = `spawn error: ${err.message}`;
  });
  children.add(entry);
  return entry;
}

async function stopChild(entry, signal = 'SIGTERM', ms = 10_000) {
  if (!entry.exited) {
    entry.child.kill(signal);
    try {
      await waitFor(`${entry.name} to exit`, () => entry.exited, ms, 20);
    } catch {
      entry.child.kill('SIGKILL');
      await waitFor(`${entry.name} to exit after SIGKILL`, () => entry.exited, 5_000, 20);
    }
  }
  children.delete(entry);
  return entry.code;
}

/**
 * Any other process (coturn, say), tracked like redis and goring: its stdout
 * and stderr go to `logPath`, stopAll stops it. Returns the tracking entry
 * with `stop(signal)` and `logTail(lines)`.
 */
export function startProcess(name, argv, { env = {}, logPath }) {
  const entry = startChild(name, argv, env, logPath);
  return {
    ...entry,
    pid: entry.child.pid,
    // The entry's own fields change when the process exits; read them there.
    get exited() {
      return entry.exited;
    },
    get code() {
      return entry.code;
    },
    stop: (signal) => stopChild(entry, signal),
    logTail: (lines) => logTail(entry, lines),
  };
}

/** Stops every process this module started (goring first, then the rest). */
export async function stopAll() {
  const all = [...children];
  const order = (e) => (e.name.startsWith('goring') ? 0 : 1);
  all.sort((a, b) => order(a) - order(b));
  for (const entry of all) await stopChild(entry);
}

process.on('exit', () => {
  for (const entry of children) if (!entry.exited) entry.child.kill('SIGKILL');
});

/** The last lines of a process's log, for failure messages. */
export function logTail(entry, lines = 40) {
  try {
    return fs.readFileSync(entry.logPath, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    sock.setTimeout(500, () => {
      sock.destroy();
      resolve(false);
    });
    sock.on('error', () => resolve(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk) => {
      data += chunk;
      if (data.includes('\r\n')) {
        sock.end();
        resolve(data.startsWith('+PONG'));
      }
    });
  });
}

/**
 * Runs one command on the Redis at 127.0.0.1:port and resolves its reply:
 * a string, an integer, null, or an array of those (RESP2). For checks of
 * goring's keys; not a client library.
 */
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.setTimeout(2_000, () => {
      sock.destroy();
      reject(new Error(`redis ${args[0]}: no reply in 2 s`));
    });
    sock.on('error', reject);
    sock.on('connect', () => {
      const parts = args.map((a) => Buffer.from(String(a)));
      sock.write(`*${parts.length}\r\n`);
      for (const p of parts) sock.write(Buffer.concat([Buffer.from(`$${p.length}\r\n`), p, Buffer.from('\r\n')]));
    });
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const parsed = parseResp(buf, 0);
      if (!parsed) return; // incomplete
      sock.end();
      if (parsed.value instanceof Error) reject(parsed.value);
      else resolve(parsed.value);
    });
  });
}

// One RESP2 value at buf[at]: {value, next}, or null when buf ends first.
function parseResp(buf, at) {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  switch (String.fromCharCode(buf[at])) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: new Error(line), next };
    case ':':
      return { value: Number(line), next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next };
      if (buf.length < next + len + 2) return null;
      return { value: buf.toString('utf8', next, next + len), next: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, next };
      const items = [];
      let pos = next;
      for (let i = 0; i < n; ++i) {
        const item = parseResp(buf, pos);
        if (!item) return null;
        items.push(item.value);
        pos = item.next;
      }
      return { value: items, next: pos };
    }
    default:
      return { value: new Error(`unexpected RESP type ${line}`), next };
  }
}

/** A private redis-server without persistence. */
export async function startRedis(dir) {
  const port = await freePort();
  const entry = startChild(
    'redis',
    ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {},
    path.join(dir, `redis-${port}.log`),
  );
  await waitFor('redis-server to answer PING', async () => {
    if (entry.exited) throw new Error(`redis-server exited (${entry.code})`);
    return redisPing(port);
  });
  return {
    ...entry,
    port,
    addr: `127.0.0.1:${port}`,
    stop: () => stopChild(entry),
    command: (...args) => redisCommand(port, ...args),
  };
}

/**
 * For a connection of `userId` about to open: notes who owns the user's
 * presence key (ws:user:{id}) now, and returns a function that waits until
 * goring has registered the new connection there (the key names another
 * owner), so others can call the user at once. goring completes the
 * WebSocket upgrade before that registration (SUBSCRIBE, then the claim
 * script), and a call.start to a user not yet registered is answered with
 * user_offline. Comparing owners rather than asking EXISTS also covers a
 * key of the user's previous connection that is still being released.
 *
 *   const registered = await presenceWatch(redis, 'bob');
 *   ...open bob's connection...
 *   await registered();
 */
export async function presenceWatch(redis, userId, ms = 10_000) {
  const key = `ws:user:${userId}`;
  const before = await redis.command('GET', key);
  return () =>
    waitFor(`goring to register ${userId}'s new connection (${key} in Redis)`, async () => {
      const owner = await redis.command('GET', key);
      return owner !== null && owner !== before;
    }, ms);
}

async function httpStatus(url) {
  try {
    const res = await fetch(url);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/**
 * A goring instance on free ports, in development mode (so /dev/token mints
 * tokens) unless `dev` is false, with per-IP limits off (every test client is 127.0.0.1) and `env`
 * on top. Resolves once GET /health answers 200.
 */
export async function startGoring(dir, { redis, serverId = 'goring-1', env = {}, dev = true }) {
  const port = await freePort();
  const adminPort = await freePort();
  const entry = startChild(
    `goring ${serverId}`,
    dev ? [goringBinary, '--dev'] : [goringBinary],
    {
      PORT: String(port),
      ADMIN_PORT: String(adminPort),
      BIND_ADDR: '127.0.0.1',
      REDIS_ADDR: redis.addr,
      SERVER_ID: serverId,
      JWT_SECRET: jwtSecret,
      LOG_LEVEL: 'debug',
      UPGRADE_RATE_PER_IP: '0',
      MAX_CONNECTIONS_PER_IP: '0',
      ...env,
    },
    path.join(dir, `${serverId}.log`),
  );
  try {
    await waitFor(`${serverId} to answer /health`, async () => {
      if (entry.exited) throw new Error(`goring exited (${entry.code})`);
      return (await httpStatus(`http://127.0.0.1:${port}/health`)) === 200;
    });
  } catch (err) {
    throw new Error(`${err.message}\n--- ${serverId} log ---\n${logTail(entry)}`);
  }
  return {
    ...entry,
    port,
    adminPort,
    serverId,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    stop: (signal) => stopChild(entry, signal),
    logTail: (lines) => logTail(entry, lines),
  };
}

function base64url(data) {
  return Buffer.from(data).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

/** An HS256 token for `userId` signed with the secret startGoring gives goring. */
export function mintToken(userId, { name, ttlSeconds = 3600, secret = jwtSecret } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = { hash: userId, username: userId, iat: now, exp: now + ttlSeconds };
  if (name) claims.name = name;
  const body = base64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${sig}`;
}
