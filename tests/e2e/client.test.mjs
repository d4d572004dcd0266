// web/signaling-client.js in Node, against a real goring: the same module
// the demo page uses, given `ws` for WebSocket and @roamhq/wrtc for
// RTCPeerConnection and a generated microphone. What a browser test cannot
// do quickly: cut a socket without a close frame, take a connection over,
// let a token run out.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import wrtc from '@roamhq/wrtc';
import { artefactDir, mintToken, presenceWatch, startGoring, startRedis, stopAll, waitFor } from './lib/cluster.mjs';
import { SignalingClient, tokenExpiry } from '../../web/signaling-client.js';

// @roamhq/wrtc 0.10 dies of SIGSEGV in its teardown at exit once an
// RTCAudioSource track was stopped: leave as soon as the runner is done.
process.on('beforeExit', () => process.exit(process.exitCode ?? 0));

const dir = artefactDir('client');
let redis;
let goring;
const feeders = new Set();

before(async () => {
  redis = await startRedis(dir);
  // No leeway: a token closes the connection as soon as its exp passes.
  goring = await startGoring(dir, { redis, env: { JWT_LEEWAY: '0s' } });
});

after(async () => {
  for (const f of feeders) clearInterval(f);
  await stopAll();
  // A track a failed test left running keeps wrtc's loop alive forever.
  setTimeout(() => process.exit(process.exitCode ?? 0), 5000).unref();
});

/** A microphone: 10 ms frames of a 440 Hz tone from wrtc's RTCAudioSource. */
async function toneMicrophone() {
  const source = new wrtc.nonstandard.RTCAudioSource();
  const track = source.createTrack();
  const samples = new Int16Array(480);
  let t = 0;
  const feeder = setInterval(() => {
    if (track.readyState === 'ended') {
      clearInterval(feeder);
      feeders.delete(feeder);
      return;
    }
    for (let i = 0; i < samples.length; i++, t++) samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * t) / 48000));
    source.onData({ samples, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
  }, 10);
  feeders.add(feeder);
  return new wrtc.MediaStream([track]);
}

/** A client whose events are recorded, with its WebSockets at hand. */
function newClient(userId, { token, onFrame, ...options } = {}) {
  const events = [];
  const sockets = [];
  class TrackedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
    // onFrame(frame, socket) sees each frame from the server first; false
    // keeps it from the client.
    set onmessage(handler) {
      super.onmessage = !onFrame || !handler ? handler : (event) => onFrame(JSON.parse(String(event.data)), this) !== false && handler(event);
    }
    get onmessage() {
      return super.onmessage;
    }
  }
  const record =
    (name) =>
    (...args) =>
      events.push({ name, args, at: Date.now() });
  const client = new SignalingClient(goring.wsUrl, token ?? mintToken(userId, { name: userId.toUpperCase() }), {
    WebSocket: TrackedWebSocket,
    RTCPeerConnection: wrtc.RTCPeerConnection,
    getUserMedia: toneMicrophone,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    ...options,
  });
  for (const name of [
    'onConnectionChange',
    'onStateChange',
    'onIncomingCall',
    'onRinging',
    'onCallAccepted',
    'onCallEnded',
    'onResumed',
    'onError',
    'onTokenExpired',
    'onTokenRefreshed',
  ])
    client[name] = record(name);
  client.onIncomingCall = (callerId, sessionId, info) => {
    events.push({ name: 'onIncomingCall', args: [callerId, sessionId, info] });
    if (options.autoAccept !== false) client.acceptCall(sessionId);
  };
  const seen = (name, pred = () => true) => events.find((e) => e.name === name && pred(...e.args));
  const waitEvent = (name, pred, ms) => waitFor(`${userId}: ${name}`, () => seen(name, pred), ms);
  return { client, events, sockets, seen, waitEvent, userId };
}

async function inboundPackets(client) {
  const pc = client.peerConnection;
  if (!pc) return 0;
  let n = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && (r.kind ?? r.mediaType) === 'audio') n += r.packetsReceived ?? 0;
  });
  return n;
}

const open = (c) => c.waitEvent('onConnectionChange', (s) => s === 'open');
const connected = (c) => waitFor(`${c.userId}: media connected`, () => c.client.callState === 'connected');

/** Both connect; the caller calls once goring has registered the callee. */
async function startCall(caller, callee) {
  // "open" is the WebSocket's; goring registers the user in Redis after it,
  // and a call.start before that gets user_offline.
  const calleeRegistered = await presenceWatch(redis, callee.userId);
  caller.client.connect();
  callee.client.connect();
  await open(caller);
  await open(callee);
  await calleeRegistered();
  assert.equal(caller.client.startCall(callee.userId), true);
}

async function callConnected(caller, callee) {
  await startCall(caller, callee);
  await callee.waitEvent('onIncomingCall');
  await connected(caller);
  await connected(callee);
}

test('a call in Node: ringing, accepted, audio both ways, hang-up', async () => {
  const alice = newClient('n-alice');
  const bob = newClient('n-bob');
  try {
    await callConnected(alice, bob);
    const ringing = alice.seen('onRinging');
    assert.equal(ringing.args[1], 'n-bob');
    assert.deepEqual(bob.seen('onIncomingCall').args.slice(0, 2), ['n-alice', ringing.args[0]]);
    assert.equal(bob.seen('onIncomingCall').args[2].name, 'N-ALICE');
    assert.equal(alice.seen('onCallAccepted').args[1].name, 'N-BOB');
    await waitFor('audio at alice', async () => (await inboundPackets(alice.client)) > 0);
    await waitFor('audio at bob', async () => (await inboundPackets(bob.client)) > 0);

    alice.client.endCall();
    await bob.waitEvent('onCallEnded', (reason) => reason === 'ended_by_user');
    assert.ok(alice.seen('onCallEnded', (reason) => reason === 'hangup'));
    assert.equal(bob.client.peerConnection, null);
  } finally {
    alice.client.disconnect();
    bob.client.disconnect();
  }
});

test('a socket cut without a close frame: the client reconnects, the call resumes on its peer connection', async () => {
  const alice = newClient('d-alice');
  const bob = newClient('d-bob');
  try {
    await callConnected(alice, bob);
    const pc = alice.client.peerConnection;
    alice.sockets.at(-1)._socket.destroy(); // no close frame: the server keeps the call
    await alice.waitEvent('onConnectionChange', (s, d) => s === 'reconnecting' && d.code === 1006);
    const resumed = await alice.waitEvent('onResumed');
    assert.equal(resumed.args[0].role, 'caller');
    assert.equal(resumed.args[0].state, 'connected'); // media never stopped
    assert.equal(alice.client.peerConnection, pc);
    assert.equal(alice.sockets.length, 2);
    assert.equal(alice.client.callState, 'connected');

    bob.client.endCall();
    await alice.waitEvent('onCallEnded', (reason) => reason === 'ended_by_user');
  } finally {
    alice.client.disconnect();
    bob.client.disconnect();
  }
});

test("the caller's offer lost in the callee's drop: after the resume the call connects without waiting for the media timeout", async () => {
  // No media timeout within the test: only the resume itself can connect it.
  const alice = newClient('o-alice', { mediaTimeoutMs: 120_000 });
  let lost = 0;
  const bob = newClient('o-bob', {
    mediaTimeoutMs: 120_000,
    onFrame: (frame, socket) => {
      if (frame.type !== 'webrtc.offer' || lost > 0) return true;
      // The first offer reaches a connection that is going: no close frame.
      lost += 1;
      socket._socket.destroy();
      return false;
    },
  });
  try {
    await startCall(alice, bob);
    await bob.waitEvent('onResumed');
    assert.equal(lost, 1);
    assert.equal(bob.sockets.length, 2);
    await connected(alice);
    await connected(bob);
    await waitFor('audio at alice', async () => (await inboundPackets(alice.client)) > 0);
    await waitFor('audio at bob', async () => (await inboundPackets(bob.client)) > 0);
    bob.client.endCall();
    await alice.waitEvent('onCallEnded', (reason) => reason === 'ended_by_user');
  } finally {
    alice.client.disconnect();
    bob.client.disconnect();
  }
});

test('a second client of the same user takes over: the first stops, the second resumes the call with a new peer connection', async () => {
  const alice = newClient('t-alice');
  const bob = newClient('t-bob');
  const alice2 = newClient('t-alice');
  try {
    await callConnected(alice, bob);
    const bobPc = bob.client.peerConnection;
    alice2.client.connect();
    await alice.waitEvent('onConnectionChange', (s, d) => s === 'closed' && d.code === 4000);
    assert.ok(alice.seen('onCallEnded', (reason) => reason === 'replaced'));
    assert.equal(alice.sockets.length, 1, 'no reconnect after a takeover');

    await alice2.waitEvent('onResumed');
    await connected(alice2);
    await waitFor('bob connected again', () => bob.client.peerConnection !== bobPc && bob.client.callState === 'connected');
    await waitFor('audio at the new alice', async () => (await inboundPackets(alice2.client)) > 0);

    alice2.client.endCall();
    await bob.waitEvent('onCallEnded', (reason) => reason === 'ended_by_user');
  } finally {
    alice.client.disconnect();
    alice2.client.disconnect();
    bob.client.disconnect();
  }
});

// Tokens for the two tests below: short-lived, for goring to close with 4001
// within the test (JWT_LEEWAY 0s), yet long enough that the client's refresh
// ahead of exp comes well before exp. mintToken counts from the whole second,
// so such a token has (TTL - 1, TTL] s left; the client refreshes halfway
// through its life (TTL / 2 s before exp, as refreshAheadSeconds is longer),
// and no sooner than 1 s after the socket opens. With 6 s, the refresh comes
// about 3 s before exp unless the upgrade takes over 1 s (then 1 s after it),
// and after a failed refresh, the next try, 2 s later, still comes 1 s before
// exp.
const SHORT_TTL = 6;

test('tokens: refreshed ahead of exp with auth.refresh; without refreshToken, 4001 stops the client', async () => {
  const freshToken = mintToken('k-fresh', { ttlSeconds: SHORT_TTL });
  const firstExpMs = tokenExpiry(freshToken) * 1000;
  const fresh = newClient('k-fresh', {
    token: freshToken,
    refreshToken: async () => mintToken('k-fresh', { ttlSeconds: 3600 }),
  });
  // Minted after fresh's: it runs out at the same time or later.
  const stale = newClient('k-stale', { token: mintToken('k-stale', { ttlSeconds: SHORT_TTL }) });
  try {
    fresh.client.connect();
    stale.client.connect();
    await open(fresh);
    const refreshed = await fresh.waitEvent('onTokenRefreshed', (exp) => exp > Date.now() / 1000 + 60);
    assert.ok(refreshed.at < firstExpMs, 'goring took the new token before the first one ran out');
    await stale.waitEvent('onConnectionChange', (s, d) => s === 'closed' && d.code === 4001);
    assert.ok(stale.seen('onTokenExpired'));
    assert.equal(stale.sockets.length, 1, 'no reconnect with an expired token');
    // The refreshed one outlives its first token: past that token's exp
    // (and a moment for a 4001 to arrive, had goring sent one), the first
    // socket is still open.
    await waitFor("fresh's first token to have run out a while ago", () => Date.now() > firstExpMs + 1000);
    assert.equal(fresh.client.connectionState, 'open');
    assert.equal(fresh.sockets.length, 1);
    assert.ok(!fresh.seen('onTokenExpired'), 'no 4001 for the refreshed client');
    assert.ok(!fresh.seen('onConnectionChange', (s) => s === 'reconnecting'), 'the refreshed client never reconnected');
  } finally {
    fresh.client.disconnect();
    stale.client.disconnect();
  }
});

test('tokens: a token that runs out closes with 4001; refreshToken gets a new one and the client reconnects with it', async () => {
  let expired = false;
  const renew = newClient('k-renew', {
    token: mintToken('k-renew', { ttlSeconds: SHORT_TTL }),
    // The token service is down until the token has run out: the refresh
    // ahead of exp fails, so the server closes with 4001 (JWT_LEEWAY 0s).
    refreshToken: async () => {
      if (!expired) throw new Error('token service unavailable');
      return mintToken('k-renew', { ttlSeconds: 3600 });
    },
  });
  renew.client.onTokenExpired = () => {
    expired = true;
    renew.events.push({ name: 'onTokenExpired', args: [], at: Date.now() });
  };
  try {
    renew.client.connect();
    await open(renew);
    await renew.waitEvent('onConnectionChange', (s, d) => s === 'reconnecting' && d.code === 4001);
    const expiredAt = renew.events.findIndex((e) => e.name === 'onTokenExpired');
    assert.ok(expiredAt >= 0);
    const refreshFailedAt = renew.events.findIndex((e) => e.name === 'onError' && e.args[0] === 'token');
    assert.ok(refreshFailedAt >= 0 && refreshFailedAt < expiredAt, 'the refresh ahead of exp failed before the 4001');
    await waitFor('a second open', () => renew.events.filter((e) => e.name === 'onConnectionChange' && e.args[0] === 'open').length === 2);
    // goring took the new token: the second upgrade succeeded.
    assert.equal(renew.sockets.length, 2);
    assert.equal(renew.client.connectionState, 'open');
    assert.ok(!renew.seen('onConnectionChange', (s) => s === 'closed'), 'the client never stopped');
  } finally {
    renew.client.disconnect();
  }
});
