// web/signaling-client.js's state machine in Node, without a server: fake
// WebSocket and RTCPeerConnection classes that the test drives by hand
// (open, close with a code, a frame from the server, an ICE state), a
// microphone that answers when told, and node:test's mock timers for the
// client's backoff, resume, refresh and media timers. Deterministic and
// fast: no sockets, no real time.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { SignalingClient } from '../../web/signaling-client.js';

const T0 = 1_700_000_000_000; // the mocked clock's start

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 }));
afterEach(() => mock.timers.reset());

/** Lets every pending promise step run (setImmediate is not mocked). */
async function flush(rounds = 10) {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Moves the mocked clock on by `ms`, in steps, running promise steps between timers. */
async function advance(ms, step = 100) {
  for (let done = 0; done < ms; done += step) {
    mock.timers.tick(Math.min(step, ms - done));
    await flush();
  }
}

function base64url(text) {
  return Buffer.from(text).toString('base64url');
}

/** An unsigned token with these claims (the client only reads them). */
function token(claims) {
  return `${base64url('{"alg":"HS256","typ":"JWT"}')}.${base64url(JSON.stringify(claims))}.sig`;
}

const nowS = () => Math.floor(Date.now() / 1000);

class FakeWebSocket {
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.all.push(this);
  }
  send(text) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  // ---- the test's side
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  frame(type, payload) {
    this.onmessage?.({ data: JSON.stringify({ type, payload }) });
  }
  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  sentOf(type) {
    return this.sent.filter((f) => f.type === type);
  }
}

class FakePeerConnection {
  constructor(config) {
    this.config = config;
    this.signalingState = 'stable';
    this.iceConnectionState = 'new';
    this.connectionState = 'new';
    this.localDescription = null;
    this.remoteDescription = null;
    this.tracks = 0;
    this.transceivers = 0;
    this.offers = [];
    this.closed = false;
    this.id = FakePeerConnection.all.length + 1;
    FakePeerConnection.all.push(this);
  }
  addTrack() {
    this.tracks += 1;
  }
  addTransceiver() {
    this.transceivers += 1;
  }
  async createOffer(options) {
    this.offers.push(options ?? {});
    return { type: 'offer', sdp: `v=0\r\na=fingerprint:sha-256 PC${this.id}\r\na=offer:${this.offers.length}\r\n` };
  }
  async createAnswer() {
    return { type: 'answer', sdp: `v=0\r\na=fingerprint:sha-256 PC${this.id}\r\na=answer\r\n` };
  }
  async setLocalDescription(d) {
    if (d.type === 'rollback') {
      this.localDescription = null;
      this.signalingState = 'stable';
      return;
    }
    this.localDescription = d;
    this.signalingState = d.type === 'offer' ? 'have-local-offer' : 'stable';
  }
  async setRemoteDescription(d) {
    this.remoteDescription = d;
    this.signalingState = d.type === 'offer' ? 'have-remote-offer' : 'stable';
  }
  async addIceCandidate() {}
  getConfiguration() {
    return this.config;
  }
  close() {
    this.closed = true;
  }
  // ---- the test's side
  connect() {
    this.iceConnectionState = this.connectionState = 'connected';
    this.onconnectionstatechange?.();
  }
}

/** A client on fakes, its events recorded. The microphone answers on `await mic.grant()`. */
function newClient(options = {}) {
  FakeWebSocket.all = [];
  FakePeerConnection.all = [];
  const pendingMic = [];
  const mic = {
    asked: () => pendingMic.length,
    /** The oldest open prompt answers with a one-track stream. */
    async grant() {
      await flush(); // the client asks from a promise step
      const resolve = pendingMic.shift();
      assert.ok(resolve, 'the microphone was asked for');
      resolve({ getTracks: () => [{ stop() {} }] });
      await flush();
    },
  };
  const events = [];
  const record =
    (name) =>
    (...args) =>
      events.push({ name, args });
  const client = new SignalingClient(options.urls ?? 'ws://goring.test', options.token ?? token({ hash: 'alice' }), {
    WebSocket: FakeWebSocket,
    RTCPeerConnection: FakePeerConnection,
    getUserMedia: () => new Promise((resolve) => pendingMic.push(resolve)),
    reconnect: { initialDelayMs: 500, maxDelayMs: 15_000, factor: 2 },
    ...options,
  });
  for (const name of [
    'onConnectionChange',
    'onStateChange',
    'onIncomingCall',
    'onRinging',
    'onCallEnded',
    'onResumed',
    'onError',
    'onTokenExpired',
  ])
    client[name] = record(name);
  const ws = () => FakeWebSocket.all.at(-1);
  const pcs = FakePeerConnection.all;
  const all = (name) => events.filter((e) => e.name === name).map((e) => e.args);
  return { client, events, mic, ws, pcs, all, sockets: FakeWebSocket.all };
}

/** connect() and the socket opens. */
function connected(h) {
  h.client.connect();
  h.ws().open();
  return h.ws();
}

/** After the server closed the socket: waits out the backoff and opens the new one. */
async function reconnected(h) {
  const before = h.sockets.length;
  const [, detail] = h.all('onConnectionChange').at(-1);
  await advance(detail.delayMs + 1, 50);
  assert.equal(h.sockets.length, before + 1);
  h.ws().open();
  return h.ws();
}

/** alice calls bob, who rings and accepts: session s1, alice is the caller. */
function acceptedCall(h, sessionId = 's1') {
  const ws = connected(h);
  assert.equal(h.client.startCall('bob'), true);
  ws.frame('call.ringing', { session_id: sessionId, callee_id: 'bob' });
  ws.frame('call.accepted', { session_id: sessionId });
  return ws;
}

/** acceptedCall, and the microphone answers: the caller's offer is made. */
async function offeredCall(h, sessionId = 's1') {
  const ws = acceptedCall(h, sessionId);
  await h.mic.grant();
  await flush();
  return ws;
}

// ---- 1: backoff ------------------------------------------------------------

test('a server that upgrades and closes with 1011 at once is retried ever more slowly; a connection that stays up starts the backoff over', async () => {
  const h = newClient();
  connected(h);
  const delays = [];
  for (let i = 0; i < 6; i++) {
    // Redis is down: goring upgrades, cannot register, says so and closes.
    h.ws().frame('error', { code: 'internal_error', message: 'the server could not register the connection' });
    h.ws().serverClose(1011, 'registration failed');
    const [state, detail] = h.all('onConnectionChange').at(-1);
    assert.equal(state, 'reconnecting');
    assert.equal(detail.code, 1011);
    assert.equal(detail.attempt, i + 1, 'the attempt count is not reset by an open that did not last');
    delays.push(detail.delayMs);
    await advance(detail.delayMs + 1, 250);
    h.ws().open();
  }
  assert.ok(
    delays.every((d) => d >= 5000),
    `1011 waits at least 5 s: ${delays}`,
  );
  // base 500 * 2^5 capped at 15000, jitter keeps at least half.
  assert.ok(delays.at(-1) >= 7500, `the wait grew: ${delays}`);
  assert.equal(h.sockets.length, 7);

  // This connection stays up past stableAfterMs (10 s): the next drop starts
  // from initialDelayMs again.
  await advance(10_000, 1000);
  h.ws().serverClose(1006);
  const [, detail] = h.all('onConnectionChange').at(-1);
  assert.equal(detail.attempt, 1);
  assert.ok(detail.delayMs <= 500, `back to initialDelayMs: ${detail.delayMs}`);
  h.client.disconnect();
});

test('a server that cannot take the client (1011) is left for the next URL; a drop (1006) too; the list wraps around', async () => {
  const h = newClient({ urls: ['ws://one.test', 'ws://two.test'] });
  connected(h);
  assert.equal(new URL(h.ws().url).host, 'one.test');
  h.ws().serverClose(1011, 'registration failed');
  await advance(h.all('onConnectionChange').at(-1)[1].delayMs + 1, 250);
  assert.equal(new URL(h.ws().url).host, 'two.test');
  h.ws().open();
  h.ws().serverClose(1006);
  await advance(h.all('onConnectionChange').at(-1)[1].delayMs + 1, 250);
  assert.equal(new URL(h.ws().url).host, 'one.test');
  h.client.disconnect();
});

// ---- 2: a step of an ended call --------------------------------------------

test("a peer connection step left over from an ended call does not build the next call's peer connection", async () => {
  const h = newClient();
  const ws = acceptedCall(h);
  await flush();
  assert.equal(h.mic.asked(), 1, 'the microphone prompt is open');
  // The call ends while the prompt is open, and carol calls.
  ws.frame('call.ended', { session_id: 's1', reason: 'ended_by_user' });
  ws.frame('call.ring', { session_id: 's2', caller_id: 'carol' });
  assert.equal(h.client.callState, 'incoming');
  await h.mic.grant(); // the first call's microphone
  await flush();
  assert.equal(h.pcs.length, 0, 'no peer connection for s2 from the step of s1');
  assert.equal(ws.sentOf('webrtc.offer').length, 0);

  // Carol's call goes its own way: accept, her offer, our answer for s2.
  assert.equal(h.client.acceptCall('s2'), true);
  await flush();
  await h.mic.grant();
  ws.frame('webrtc.offer', { session_id: 's2', sdp: 'v=0\r\na=fingerprint:sha-256 CAROL\r\n' });
  await flush();
  assert.equal(h.pcs.length, 1);
  assert.equal(h.client.peerConnection, h.pcs[0]);
  assert.equal(h.pcs[0].tracks, 1, 'the peer connection sends the microphone');
  assert.equal(h.pcs[0].transceivers, 0);
  assert.deepEqual(
    ws.sentOf('webrtc.answer').map((f) => f.payload.session_id),
    ['s2'],
  );
  h.client.disconnect();
});

// ---- 3: descriptions made while the connection is down ---------------------

test('an offer made while the socket is down is offered again on call.resumed', async () => {
  const h = newClient();
  acceptedCall(h);
  await flush();
  // The socket drops while the microphone prompt is open; the offer is made
  // meanwhile and cannot be sent.
  h.ws().serverClose(1006);
  await h.mic.grant();
  await flush();
  const pc = h.pcs[0];
  assert.equal(pc.signalingState, 'have-local-offer');
  assert.equal(h.client.callState, 'accepted');

  const ws = await reconnected(h);
  ws.frame('call.resumed', { session_id: 's1', peer_id: 'bob', state: 'accepted', role: 'caller' });
  await flush();
  const offers = ws.sentOf('webrtc.offer');
  assert.equal(offers.length, 1, 'the offer is made again and sent');
  assert.equal(offers[0].payload.session_id, 's1');
  assert.equal(offers[0].payload.sdp, pc.localDescription.sdp);
  assert.deepEqual(pc.offers.at(-1), { iceRestart: true });
  assert.equal(h.client.peerConnection, pc, 'the same peer connection');

  ws.frame('webrtc.answer', { session_id: 's1', sdp: 'v=0\r\na=fingerprint:sha-256 BOB\r\n' });
  await flush();
  pc.connect();
  assert.equal(h.client.callState, 'connected');
  h.client.disconnect();
});

test('an answer made while the socket is down is sent on call.resumed, not replaced by an offer', async () => {
  const h = newClient();
  const ws1 = connected(h);
  ws1.frame('call.ring', { session_id: 's1', caller_id: 'bob' });
  assert.equal(h.client.acceptCall(), true);
  await flush();
  ws1.frame('webrtc.offer', { session_id: 's1', sdp: 'v=0\r\na=fingerprint:sha-256 BOB\r\n' });
  ws1.serverClose(1006); // the answer waits for the microphone; the socket drops
  await h.mic.grant();
  await flush();
  const pc = h.pcs[0];
  assert.equal(pc.localDescription.type, 'answer');
  assert.equal(ws1.sentOf('webrtc.answer').length, 0);

  const ws = await reconnected(h);
  ws.frame('call.resumed', { session_id: 's1', peer_id: 'bob', state: 'accepted', role: 'callee' });
  await flush();
  assert.deepEqual(
    ws.sentOf('webrtc.answer').map((f) => [f.payload.session_id, f.payload.sdp]),
    [['s1', pc.localDescription.sdp]],
  );
  assert.equal(ws.sentOf('webrtc.offer').length, 0, 'the caller still waits for its answer: no offer of ours');
  h.client.disconnect();
});

test("a callee that lost the caller's offer in a drop offers itself; the caller sends its offer again and the callee takes it", async () => {
  // The caller's side: its offer went out while the callee was away.
  const caller = newClient();
  const ws = acceptedCall(caller);
  await caller.mic.grant();
  await flush();
  const pc = caller.pcs[0];
  assert.equal(pc.signalingState, 'have-local-offer');
  assert.equal(ws.sentOf('webrtc.offer').length, 1);
  // The callee, back without a peer connection, offers: the caller keeps
  // its own offer and sends it again rather than waiting for the media timeout.
  ws.frame('webrtc.offer', { session_id: 's1', sdp: 'v=0\r\na=fingerprint:sha-256 BOB2\r\n' });
  await flush();
  const offers = ws.sentOf('webrtc.offer');
  assert.equal(offers.length, 2, 'the offer is sent again at once');
  assert.equal(offers[1].payload.sdp, offers[0].payload.sdp, 'the same offer');
  assert.equal(pc.signalingState, 'have-local-offer');
  assert.equal(caller.client.peerConnection, pc, 'the same peer connection');
  assert.equal(ws.sentOf('webrtc.answer').length, 0);
  ws.frame('webrtc.answer', { session_id: 's1', sdp: 'v=0\r\na=fingerprint:sha-256 BOB2\r\n' });
  await flush();
  pc.connect();
  assert.equal(caller.client.callState, 'connected');
  caller.client.disconnect();

  // The callee's side: resumed with no peer connection, it offers; the
  // caller's offer then comes and it gives way and answers it.
  const callee = newClient();
  const ws1 = connected(callee);
  ws1.frame('call.ring', { session_id: 's1', caller_id: 'carol' });
  assert.equal(callee.client.acceptCall(), true);
  await callee.mic.grant();
  ws1.serverClose(1006); // the caller's offer is lost with this connection
  const ws2 = await reconnected(callee);
  ws2.frame('call.resumed', { session_id: 's1', peer_id: 'carol', state: 'accepted', role: 'callee' });
  await flush();
  assert.equal(ws2.sentOf('webrtc.offer').length, 1, 'the callee offers');
  const calleePc = callee.pcs[0];
  ws2.frame('webrtc.offer', { session_id: 's1', sdp: 'v=0\r\na=fingerprint:sha-256 CAROL\r\n' });
  await flush();
  assert.equal(calleePc.remoteDescription.sdp, 'v=0\r\na=fingerprint:sha-256 CAROL\r\n');
  assert.equal(ws2.sentOf('webrtc.answer').length, 1, 'the callee answers the offer');
  calleePc.connect();
  assert.equal(callee.client.callState, 'connected');
  callee.client.disconnect();
});

test("a caller restarting ICE that gets an offer from the callee's new peer connection (another device) answers it with a new one", async () => {
  const h = newClient();
  const ws = await offeredCall(h);
  const pc = h.pcs[0];
  ws.frame('webrtc.answer', { session_id: 's1', sdp: 'v=0\r\na=fingerprint:sha-256 BOB1\r\n' });
  await flush();
  pc.connect();
  assert.equal(h.client.callState, 'connected');
  // ICE fails: the caller offers again, restarting ICE.
  pc.iceConnectionState = pc.connectionState = 'failed';
  pc.onconnectionstatechange?.();
  await flush();
  assert.equal(pc.signalingState, 'have-local-offer');
  const sentBefore = ws.sentOf('webrtc.offer').length;
  // The callee's offer comes from a new peer connection: not ours to repeat.
  ws.frame('webrtc.offer', { session_id: 's1', sdp: 'v=0\r\na=fingerprint:sha-256 BOB2\r\n' });
  await flush();
  assert.equal(ws.sentOf('webrtc.offer').length, sentBefore, 'no offer of ours again');
  assert.equal(pc.closed, true, 'the old peer connection is closed');
  const fresh = h.client.peerConnection;
  assert.notEqual(fresh, pc);
  assert.equal(fresh.remoteDescription.sdp, 'v=0\r\na=fingerprint:sha-256 BOB2\r\n');
  assert.equal(ws.sentOf('webrtc.answer').length, 1, 'answered with the new one');
  h.client.disconnect();
});

test('media that does not connect: the caller restarts ICE once, then the call ends as media_timeout', async () => {
  const h = newClient({ mediaTimeoutMs: 20_000 });
  const ws = await offeredCall(h);
  assert.equal(ws.sentOf('webrtc.offer').length, 1);
  // No answer ever comes.
  await advance(20_000, 1000);
  const offers = ws.sentOf('webrtc.offer');
  assert.equal(offers.length, 2, 'an ICE restart offer');
  assert.deepEqual(h.pcs[0].offers.at(-1), { iceRestart: true });
  assert.equal(h.client.callState, 'accepted');
  await advance(20_000, 1000);
  assert.equal(h.client.callState, 'idle');
  assert.deepEqual(h.all('onCallEnded').map((a) => a[0]), ['media_timeout']);
  assert.deepEqual(
    ws.sentOf('call.end').map((f) => f.payload.session_id),
    ['s1'],
  );
  h.client.disconnect();
});

test('media that connects in time: no restart, no end', async () => {
  const h = newClient({ mediaTimeoutMs: 20_000 });
  const ws = await offeredCall(h);
  ws.frame('webrtc.answer', { session_id: 's1', sdp: 'v=0\r\na=fingerprint:sha-256 BOB\r\n' });
  await flush();
  h.pcs[0].connect();
  await advance(60_000, 5000);
  assert.equal(h.client.callState, 'connected');
  assert.equal(ws.sentOf('webrtc.offer').length, 1);
  h.client.disconnect();
});

// ---- 4: accept and reject while reconnecting --------------------------------

test('accept while reconnecting fails visibly and the call keeps ringing; after call.resumed it goes through', async () => {
  const h = newClient();
  const ws1 = connected(h);
  ws1.frame('call.ring', { session_id: 's1', caller_id: 'bob' });
  ws1.serverClose(1006);
  assert.equal(h.client.acceptCall('s1'), false);
  assert.deepEqual(h.all('onError').at(-1)[0], 'not_connected');
  assert.equal(h.client.callState, 'incoming');
  assert.equal(ws1.sentOf('call.accept').length, 0);

  const ws = await reconnected(h);
  ws.frame('call.resumed', { session_id: 's1', peer_id: 'bob', state: 'ringing', role: 'callee' });
  assert.equal(h.client.acceptCall('s1'), true);
  assert.equal(h.client.callState, 'accepted');
  assert.deepEqual(
    ws.sentOf('call.accept').map((f) => f.payload.session_id),
    ['s1'],
  );
  h.client.disconnect();
});

test('reject while reconnecting ends the call here and is sent once the server hands the call back', async () => {
  const h = newClient();
  const ws1 = connected(h);
  ws1.frame('call.ring', { session_id: 's1', caller_id: 'bob' });
  ws1.serverClose(1006);
  assert.equal(h.client.rejectCall('s1'), true);
  assert.equal(h.client.callState, 'idle');
  assert.deepEqual(h.all('onCallEnded').map((a) => a[0]), ['declined']);

  const ws = await reconnected(h);
  ws.frame('call.resumed', { session_id: 's1', peer_id: 'bob', state: 'ringing', role: 'callee' });
  assert.deepEqual(
    ws.sentOf('call.reject').map((f) => f.payload.session_id),
    ['s1'],
  );
  assert.equal(h.client.callState, 'idle');
  assert.equal(h.all('onIncomingCall').length, 1, 'it does not ring again');
  h.client.disconnect();
});

test('startCall while reconnecting fails visibly', async () => {
  const h = newClient();
  connected(h);
  h.ws().serverClose(1006);
  assert.equal(h.client.startCall('bob'), false);
  assert.equal(h.all('onError').at(-1)[0], 'not_connected');
  assert.equal(h.client.callState, 'idle');
  h.client.disconnect();
});

// ---- 5: token refresh --------------------------------------------------------

test('a token shorter-lived than refreshAheadSeconds is refreshed halfway through its life, not every second', async () => {
  const mint = () => token({ hash: 'alice', iat: nowS(), exp: nowS() + 20 });
  let asked = 0;
  const h = newClient({
    token: mint(),
    refreshToken: async () => {
      asked += 1;
      return mint();
    },
  });
  const ws = connected(h);
  await advance(95_000, 500);
  // One refresh every 10 s (half of 20 s), the last at 90 s.
  assert.equal(asked, 9);
  assert.equal(ws.sentOf('auth.refresh').length, 9);
  h.client.disconnect();
});

test('a refresh that brings no later exp is asked again ever more slowly', async () => {
  const stuck = token({ hash: 'alice', iat: nowS(), exp: nowS() + 3600 });
  let asked = 0;
  const h = newClient({
    token: stuck,
    refreshToken: async () => {
      asked += 1;
      return stuck; // a token service that hands back a cached token
    },
  });
  connected(h);
  await advance(3540_000, 60_000); // 60 s before exp: the first refresh
  assert.equal(asked, 1);
  await advance(50_000, 250); // a minute ahead of exp, at 1 s intervals it would be ~50
  assert.ok(asked <= 6, `asked ${asked} times in 50 s`);
  assert.ok(asked >= 3, `asked ${asked} times in 50 s`);
  h.client.disconnect();
});

test('a refresh ahead of exp that fails once the socket has closed for another reason leaves the reconnect alone', async () => {
  let fail;
  const h = newClient({
    token: token({ hash: 'alice', iat: nowS(), exp: nowS() + 3600 }),
    // A slow token service: the answer comes after the socket dropped.
    refreshToken: () => new Promise((_resolve, reject) => (fail = reject)),
  });
  const ws1 = connected(h);
  await advance(3540_000, 60_000); // 60 s before exp: the refresh starts
  assert.ok(fail, 'refreshToken was asked');
  ws1.serverClose(1006);
  fail(new Error('token service unavailable'));
  await flush();
  assert.deepEqual(h.all('onError').map((a) => a[0]), ['token']);
  assert.equal(h.all('onTokenExpired').length, 0);
  // The token has a minute left: the client reconnects with it.
  await reconnected(h);
  assert.equal(h.client.connectionState, 'open');
  assert.ok(!h.all('onConnectionChange').some(([s]) => s === 'closed'), 'the client never stopped');
  h.client.disconnect();
});

test('a refresh ahead of exp that fails while the server closes with 4001 still lets the 4001 refresh and reconnect', async () => {
  let up = false;
  const h = newClient({
    token: token({ hash: 'alice', iat: nowS(), exp: nowS() + 3600 }),
    refreshToken: async () => {
      if (!up) throw new Error('token service unavailable');
      return token({ hash: 'alice', iat: nowS(), exp: nowS() + 7200 });
    },
  });
  const ws1 = connected(h);
  await advance(3480_000, 60_000);
  // The server's close frame came in (the socket is closing, no close event
  // yet) as the refresh timer fires.
  ws1.readyState = 2;
  await advance(60_000, 60_000);
  assert.deepEqual(h.all('onError').map((a) => a[0]), ['token']);
  up = true;
  ws1.serverClose(4001, 'token expired');
  await flush();
  assert.equal(h.all('onTokenExpired').length, 1);
  await reconnected(h);
  assert.equal(h.client.connectionState, 'open');
  assert.ok(!h.all('onConnectionChange').some(([s]) => s === 'closed'), 'the client never stopped');
  h.client.disconnect();
});

// ---- 6: closes that end the call server-side --------------------------------

for (const code of [1008, 1009, 1011, 1013]) {
  test(`close ${code} ends the call at once (the server has ended it)`, async () => {
    const h = newClient();
    const ws = await offeredCall(h);
    ws.serverClose(code);
    assert.equal(h.client.callState, 'idle');
    assert.deepEqual(h.all('onCallEnded').map((a) => a[0]), ['disconnected']);
    h.client.disconnect();
  });
}

for (const code of [1006, 1012]) {
  test(`close ${code} keeps the call for call.resumed`, async () => {
    const h = newClient();
    const ws1 = await offeredCall(h);
    h.pcs[0].connect();
    ws1.serverClose(code);
    assert.equal(h.client.callState, 'connected');
    const ws = await reconnected(h);
    ws.frame('call.resumed', { session_id: 's1', peer_id: 'bob', state: 'accepted', role: 'caller' });
    assert.equal(h.client.callState, 'connected');
    assert.equal(h.all('onResumed').length, 1);
    assert.equal(h.all('onCallEnded').length, 0);
    h.client.disconnect();
  });
}

// ---- 7: cancels around reconnects -------------------------------------------

test("a drop that loses call.start's answer ends the call; its call.resumed then cancels it instead of bringing it back", async () => {
  const h = newClient();
  const ws1 = connected(h);
  h.client.startCall('bob');
  ws1.serverClose(1006); // before call.ringing
  assert.deepEqual(h.all('onCallEnded').map((a) => a[0]), ['disconnected']);

  const ws = await reconnected(h);
  ws.frame('call.resumed', { session_id: 's1', peer_id: 'bob', state: 'ringing', role: 'caller' });
  assert.deepEqual(
    ws.sentOf('call.end').map((f) => f.payload.session_id),
    ['s1'],
  );
  assert.equal(h.client.callState, 'idle');
  assert.equal(h.all('onResumed').length, 0);
  h.client.disconnect();
});

test("the timer that forgets a cancel after a reconnect does not forget a later call's cancel", async () => {
  const h = newClient({ resumeTimeoutMs: 5000 });
  const ws1 = connected(h);
  h.client.startCall('bob');
  ws1.serverClose(1006);
  const ws = await reconnected(h); // the 5 s timer starts
  await advance(1000);
  ws.frame('call.resumed', { session_id: 's1', peer_id: 'bob', state: 'ringing', role: 'caller' });
  assert.equal(ws.sentOf('call.end').length, 1);

  // A new call, cancelled before its session id comes; the server is slow.
  await advance(1000);
  assert.equal(h.client.startCall('carol'), true);
  h.client.endCall();
  await advance(4000); // past the first reconnect's 5 s
  ws.frame('call.ringing', { session_id: 's2', callee_id: 'carol' });
  assert.deepEqual(
    ws.sentOf('call.end').map((f) => f.payload.session_id),
    ['s1', 's2'],
    'the late call.ringing of the cancelled call is ended',
  );
  assert.equal(h.client.callState, 'idle');
  h.client.disconnect();
});

test('a hang-up while reconnecting is sent once the call is handed back', async () => {
  const h = newClient();
  const ws1 = await offeredCall(h);
  ws1.serverClose(1006);
  assert.equal(h.client.endCall(), true);
  assert.deepEqual(h.all('onCallEnded').map((a) => a[0]), ['hangup']);
  const ws = await reconnected(h);
  ws.frame('call.resumed', { session_id: 's1', peer_id: 'bob', state: 'accepted', role: 'caller' });
  assert.deepEqual(
    ws.sentOf('call.end').map((f) => f.payload.session_id),
    ['s1'],
  );
  assert.equal(h.client.callState, 'idle');
  h.client.disconnect();
});

// ---- offline ring ------------------------------------------------------------

test('a call to an offline callee rings as "waking their phone"; the ring after their app connects, the accept and a cancel work as usual', async () => {
  const h = newClient();
  const ws = connected(h);
  assert.equal(h.client.startCall('bob'), true);
  ws.frame('call.ringing', { session_id: 's1', callee_id: 'bob', callee_offline: true });
  assert.deepEqual(h.all('onRinging').at(-1), ['s1', 'bob', { calleeOffline: true }]);
  assert.equal(h.client.callState, 'ringing');
  assert.equal(h.client.call.calleeOffline, true);
  // bob's phone woke and he answered: the call goes on as any other.
  ws.frame('call.accepted', { session_id: 's1', callee_info: { user_id: 'bob' } });
  assert.equal(h.client.callState, 'accepted');
  h.client.endCall();
  assert.deepEqual(ws.sent.at(-1), { type: 'call.end', payload: { session_id: 's1' } });

  // A call to an online callee says nothing of the kind.
  await advance(1000);
  assert.equal(h.client.startCall('carol'), true);
  ws.frame('call.ringing', { session_id: 's2', callee_id: 'carol' });
  assert.deepEqual(h.all('onRinging').at(-1), ['s2', 'carol', { calleeOffline: false }]);
  assert.equal(h.client.call.calleeOffline, undefined);
  // Cancelling while the phone is being woken is call.end, as always.
  h.client.endCall();
  assert.deepEqual(ws.sent.at(-1), { type: 'call.end', payload: { session_id: 's2' } });
});
