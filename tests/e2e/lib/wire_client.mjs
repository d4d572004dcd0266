// A goring client for the tests, on the `ws` package: connects with a token,
// sends frames, and hands received frames to the test in order of type.
//
//   const alice = await WireClient.connect(goring.wsUrl, 'alice');
//   alice.send('call.start', { callee_id: 'bob' });
//   const { session_id } = await alice.next('call.ringing');
//
// Every received frame goes to an inbox; next(type) takes the oldest frame of
// that type from it (waiting up to a timeout), so frames of other types may
// arrive in between without breaking the test. route(type, fn) sends frames
// of a type to a handler instead (the WebRTC pump uses it). Frames of type
// `error` the test did not wait for are kept in `errors`; a test asserts it
// is empty at the end (assertNoErrors).
import WebSocket from 'ws';
import { mintToken, presenceWatch } from './cluster.mjs';

export class WireClient {
  /**
   * Connects `userId` to `wsUrl` (ws://host:port) with a token from
   * mintToken, or `token` when given. Rejects if the upgrade fails. With
   * `redis` (from startRedis), also waits until goring has registered this
   * connection there (presenceWatch), so others can call the user at once:
   * the upgrade completes before that registration does.
   */
  static async connect(wsUrl, userId, { token, name, redis, ms = 10_000 } = {}) {
    const registered = redis ? await presenceWatch(redis, userId, ms) : null;
    const ws = new WebSocket(`${wsUrl}/ws?token=${token ?? mintToken(userId, { name })}`);
    const client = new WireClient(ws, userId);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${userId}: no WebSocket open within ${ms} ms`)), ms);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`${userId}: upgrade refused with HTTP ${res.statusCode}`));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    if (registered) await registered();
    return client;
  }

  constructor(ws, userId) {
    this.ws = ws;
    this.userId = userId;
    this.inbox = [];
    this.errors = [];
    this.received = []; // every frame, in order, for failure messages
    this.waiters = [];
    this.routes = new Map();
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const w of this.waiters) w.reject(new Error(`${userId}: connection closed (${code} ${reason}) while waiting for ${w.type}`));
        this.waiters = [];
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => {}); // surfaces as 'close'
    ws.on('message', (data, isBinary) => this.#receive(data, isBinary));
  }

  #receive(data, isBinary) {
    let frame;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      frame = { type: isBinary ? '(binary)' : '(not JSON)', payload: { raw: data.toString() } };
    }
    this.received.push(frame);
    const route = this.routes.get(frame.type);
    if (route) return route(frame.payload, frame);
    const i = this.waiters.findIndex((w) => w.type === frame.type);
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      return w.resolve(frame.payload);
    }
    if (frame.type === 'error') {
      this.errors.push(frame.payload);
      // Whoever waits for something else will not get it: say why now.
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${this.userId}: got error ${JSON.stringify(frame.payload)} while waiting for ${w.type}`));
    }
    this.inbox.push(frame);
  }

  /** Sends {type, payload}. */
  send(type, payload) {
    this.ws.send(JSON.stringify({ type, payload }));
  }

  /** Frames of `type` go to `handler(payload, frame)` from now on, not to next(). */
  route(type, handler) {
    this.routes.set(type, handler);
  }

  /**
   * The payload of the oldest unread frame of `type`, waiting up to `ms` for
   * one. An `error` frame taken this way no longer counts as unexpected.
   */
  next(type, ms = 10_000) {
    const i = this.inbox.findIndex((f) => f.type === type);
    if (i >= 0) {
      const [frame] = this.inbox.splice(i, 1);
      if (type === 'error') this.errors.splice(this.errors.indexOf(frame.payload), 1);
      return Promise.resolve(frame.payload);
    }
    if (this.closeInfo) return Promise.reject(new Error(`${this.userId}: connection closed before ${type}`));
    return new Promise((resolve, reject) => {
      const waiter = { type, resolve, reject };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        const seen = this.received.map((f) => f.type).join(', ') || 'nothing';
        reject(new Error(`${this.userId}: no ${type} within ${ms} ms (received so far: ${seen})`));
      }, ms);
      waiter.resolve = (payload) => {
        clearTimeout(timer);
        resolve(payload);
      };
      waiter.reject = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      this.waiters.push(waiter);
    });
  }

  /** Throws if goring sent an `error` frame the test did not take with next('error'). */
  assertNoErrors() {
    if (this.errors.length) throw new Error(`${this.userId} got unexpected errors: ${JSON.stringify(this.errors)}`);
  }

  /** Closes the connection (1000) and waits for the close handshake. */
  async close() {
    if (!this.closeInfo) this.ws.close(1000);
    return this.closed;
  }
}

/**
 * Places a call from `caller` to `callee` (WireClients) and has the callee
 * accept it: call.start → call.ringing (caller) and call.ring (callee) →
 * call.accept → call.accepted. Returns the session id.
 */
export async function placeCall(caller, callee) {
  caller.send('call.start', { callee_id: callee.userId });
  const ringing = await caller.next('call.ringing');
  const ring = await callee.next('call.ring');
  if (ring.session_id !== ringing.session_id || ring.caller_id !== caller.userId)
    throw new Error(`call.ring ${JSON.stringify(ring)} does not match call.ringing ${JSON.stringify(ringing)}`);
  callee.send('call.accept', { session_id: ring.session_id });
  const accepted = await caller.next('call.accepted');
  if (accepted.session_id !== ring.session_id) throw new Error(`call.accepted for ${accepted.session_id}, not ${ring.session_id}`);
  return ring.session_id;
}
