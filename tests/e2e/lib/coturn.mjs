// Debian's coturn (/usr/bin/turnserver) for the TURN tests: one private
// server on loopback that accepts only the time-limited credentials of the
// TURN REST scheme (use-auth-secret), started and stopped by PID through
// cluster.mjs, so stopAll ends it with everything else.
//
// Its whole configuration is a file in the artefact directory, passed with
// -c, so nothing from /etc/turnserver.conf applies and the file shows what
// ran. It listens on UDP and TCP of one free port, relays from a small range
// of UDP ports, has no TLS, DTLS, CLI or RFC 5780 second port, and allows
// peers on loopback (coturn refuses 127.x peers by default, and every peer
// of these tests is one). It logs verbosely to turnserver-PORT.log beside it.
import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, startProcess, waitFor } from './cluster.mjs';

export const turnserverBinary = process.env.TURNSERVER_PATH ?? '/usr/bin/turnserver';

/** Whether a UDP port is free on 127.0.0.1 this moment. */
function udpFree(port) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', () => resolve(false));
    sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
  });
}

/** A port free for both TCP and UDP on 127.0.0.1 a moment ago. */
async function freeTcpUdpPort() {
  for (let i = 0; i < 50; ++i) {
    const port = await freePort();
    if (await udpFree(port)) return port;
  }
  throw new Error('no port free for both TCP and UDP on 127.0.0.1');
}

/** `count` consecutive UDP ports free on 127.0.0.1, for coturn's relays. */
async function freeUdpRange(count) {
  for (let i = 0; i < 50; ++i) {
    const first = 20_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (let p = first; ok && p < first + count; ++p) ok = await udpFree(p);
    if (ok) return [first, first + count - 1];
  }
  throw new Error(`no ${count} consecutive free UDP ports on 127.0.0.1`);
}

/**
 * Resolves true when a STUN Binding request to 127.0.0.1:port gets a Binding
 * success response (RFC 5389: type 0x0101, the same transaction id).
 */
export function stunBinding(port, ms = 500) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const txid = randomBytes(12);
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0); // Binding request
    req.writeUInt16BE(0, 2); // no attributes
    req.writeUInt32BE(0x2112a442, 4); // magic cookie
    txid.copy(req, 8);
    const done = (ok) => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    sock.on('error', () => done(false));
    sock.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(txid)) done(true);
    });
    sock.send(req, port, '127.0.0.1');
  });
}

/**
 * Credentials of the TURN REST scheme coturn's use-auth-secret checks:
 * username `expiry:userId` (expiry in unix seconds), password the base64 of
 * HMAC-SHA1(secret, username). goring hands these out; tests compute them to
 * compare and to forge wrong ones.
 */
export function turnCredentials(secret, userId, ttlSeconds) {
  const username = `${Math.floor(Date.now() / 1000) + ttlSeconds}:${userId}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/**
 * Starts coturn on 127.0.0.1 and resolves once it answers a STUN Binding
 * request. Returns the process entry (stop, logTail, log path) with `port`,
 * `secret`, `realm`, `relayPorts` and `urls` (turn: URLs for UDP and TCP).
 */
export async function startCoturn(dir, { secret = 'e2e_turn_secret', realm = 'goring.test', relayPortCount = 40 } = {}) {
  const port = await freeTcpUdpPort();
  const [minPort, maxPort] = await freeUdpRange(relayPortCount);
  const confPath = path.join(dir, `turnserver-${port}.conf`);
  const logPath = path.join(dir, `turnserver-${port}.log`);
  const lines = [
    `listening-ip=127.0.0.1`,
    `relay-ip=127.0.0.1`,
    `listening-port=${port}`,
    `min-port=${minPort}`,
    `max-port=${maxPort}`,
    `realm=${realm}`,
    `use-auth-secret`,
    `static-auth-secret=${secret}`,
    `fingerprint`,
    `allow-loopback-peers`,
    `no-tls`,
    `no-dtls`,
    `no-cli`,
    `no-rfc5780`,
    `no-multicast-peers`,
    `no-software-attribute`,
    `userdb=${path.join(dir, `turndb-${port}`)}`,
    `pidfile=${path.join(dir, `turnserver-${port}.pid`)}`,
    `log-file=${logPath}`,
    `simple-log`,
    `verbose`,
  ];
  fs.writeFileSync(confPath, `${lines.join('\n')}\n`);
  // stdout/stderr (what coturn prints before its log file is open) go beside it.
  const entry = startProcess(`turnserver ${port}`, [turnserverBinary, '-c', confPath], {
    logPath: path.join(dir, `turnserver-${port}.stdout.log`),
  });
  try {
    await waitFor('turnserver to answer a STUN Binding request', async () => {
      if (entry.exited) throw new Error(`turnserver exited (${entry.code})`);
      return stunBinding(port);
    });
  } catch (err) {
    throw new Error(`${err.message}\n--- turnserver stdout ---\n${entry.logTail()}`);
  }
  return Object.assign(entry, {
    port,
    secret,
    realm,
    relayPorts: [minPort, maxPort],
    confPath,
    turnLogPath: logPath,
    urls: [`turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`],
    /** coturn's own log so far. */
    log: () => {
      try {
        return fs.readFileSync(logPath, 'utf8');
      } catch {
        return '';
      }
    },
  });
}
