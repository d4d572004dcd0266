// TURN relay through Debian's coturn with the credentials goring hands out.
//
// coturn runs on loopback with use-auth-secret (the TURN REST scheme);
// goring gets TURN_URLS, TURN_SECRET and STUN_URLS and sends every client an
// ice.servers frame on connecting. Two @roamhq/wrtc peers, on two goring
// instances, use exactly those ice_servers with iceTransportPolicy 'relay':
// they connect, pass bytes, and getStats shows a relay pair on both sides.
// A client whose credential was tampered with gets no relay candidate and
// does not connect (coturn answers its Allocate with 401). With a short
// TURN_TTL, a second ice.servers frame arrives with a later expiry, and its
// credentials work for a new connection.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { artefactDir, sleep, startGoring, startRedis, stopAll, waitFor } from './lib/cluster.mjs';
import { startCoturn } from './lib/coturn.mjs';
import { WireClient, placeCall } from './lib/wire_client.mjs';
import { WrtcPeer, exchangeBytes } from './lib/wrtc_peer.mjs';

const TURN_SECRET = 'e2e_turn_secret';
// Short, yet long enough for a loaded machine to allocate with the second
// credential before it expires: coturn refuses a username whose expiry has
// passed, and that credential has at most TURN_TTL seconds left (goring
// counts from the whole second) when the frame arrives.
const SHORT_TTL = 4;

let redis;
let coturn;
let g1; // TURN_TTL 600
let g2; // TURN_TTL 600
let g3; // TURN_TTL SHORT_TTL
const peers = [];
const clients = [];

before(async () => {
  const dir = artefactDir('turn');
  redis = await startRedis(dir);
  coturn = await startCoturn(dir, { secret: TURN_SECRET, realm: 'goring.test' });
  const env = (ttl) => ({
    STUN_URLS: `stun:127.0.0.1:${coturn.port}`,
    TURN_URLS: coturn.urls.join(','),
    TURN_SECRET,
    TURN_TTL: String(ttl),
  });
  g1 = await startGoring(dir, { redis, serverId: 'goring-1', env: env(600) });
  g2 = await startGoring(dir, { redis, serverId: 'goring-2', env: env(600) });
  g3 = await startGoring(dir, { redis, serverId: 'goring-3', env: env(SHORT_TTL) });
});

after(async () => {
  for (const p of peers) p.close();
  for (const c of clients) await c.close();
  await stopAll();
});

async function connect(goring, userId) {
  const client = await WireClient.connect(goring.wsUrl, userId, { redis });
  clients.push(client);
  return client;
}

/** The next ice.servers frame goring sent `client` (the first comes on connecting). */
function nextIceServers(client, ttl = 600) {
  // A refresh comes after 80 % of a short TURN_TTL; a long one only matters
  // for the first frame, which comes at once.
  return client.next('ice.servers', 5_000 + 1_000 * Math.min(ttl, 10));
}

/** Checks an ice.servers payload against the coturn and the REST scheme; returns its TURN entry. */
function checkIceServers(payload, userId, ttl) {
  assert.equal(payload.ttl, ttl);
  assert.ok(Number.isInteger(payload.expires_at));
  const stun = payload.ice_servers.find((s) => !s.username);
  assert.deepEqual(stun.urls, [`stun:127.0.0.1:${coturn.port}`]);
  const turn = payload.ice_servers.find((s) => s.username);
  assert.deepEqual(turn.urls, coturn.urls);
  assert.equal(turn.username, `${payload.expires_at}:${userId}`);
  assert.equal(turn.credential, createHmac('sha1', TURN_SECRET).update(turn.username).digest('base64'));
  return turn;
}

/** Waits (briefly: coturn writes its log as it goes) for a line of coturn's log to match. */
function coturnLogged(re) {
  return waitFor(`coturn's log to match ${re}`, () => re.test(coturn.log()), 5_000);
}

const relayOnly = (iceServers) => ({ iceServers, iceTransportPolicy: 'relay' });

/** A caller and a callee peer in an accepted call; the caller has sent its offer. */
async function relayCall(alice, bob, aliceServers, bobServers) {
  const sessionId = await placeCall(alice, bob);
  const caller = new WrtcPeer(alice, sessionId, 'caller', relayOnly(aliceServers));
  const callee = new WrtcPeer(bob, sessionId, 'callee', relayOnly(bobServers));
  peers.push(caller, callee);
  await caller.start();
  return { sessionId, caller, callee };
}

async function assertRelayed(peer) {
  const { local, remote } = await peer.selectedPair();
  assert.equal(local.candidateType, 'relay', `${peer.name}'s local candidate is ${local.candidateType}`);
  assert.equal(remote.candidateType, 'relay', `${peer.name}'s remote candidate is ${remote.candidateType}`);
  assert.ok(peer.localCandidates.every((c) => / typ relay /.test(c)), `${peer.name} offered only relay candidates`);
}

async function hangUp(from, to, sessionId) {
  from.send('call.end', { session_id: sessionId });
  const ended = await to.next('call.ended');
  assert.equal(ended.session_id, sessionId);
}

test('two peers forced through coturn with goring\'s credentials connect and pass bytes', async () => {
  const alice = await connect(g1, 'turn-alice');
  const bob = await connect(g2, 'turn-bob');
  const aliceIce = await nextIceServers(alice);
  const bobIce = await nextIceServers(bob);
  assert.equal(alice.received[0].type, 'ice.servers', 'ice.servers is the first frame');
  assert.equal(bob.received[0].type, 'ice.servers', 'ice.servers is the first frame');
  checkIceServers(aliceIce, 'turn-alice', 600);
  const bobTurn = checkIceServers(bobIce, 'turn-bob', 600);

  const { sessionId, caller, callee } = await relayCall(alice, bob, aliceIce.ice_servers, bobIce.ice_servers);
  await Promise.all([caller.connected(), callee.connected()]);
  await assertRelayed(caller);
  await assertRelayed(callee);

  const x = await exchangeBytes(caller, callee, 256 * 1024);
  assert.equal(x.receivedByB, x.sentByA);
  assert.equal(x.receivedByA, x.sentByB);

  // coturn allocated for goring's usernames.
  await coturnLogged(new RegExp(`user <${bobTurn.username}>.*ALLOCATE processed, success`));

  await hangUp(alice, bob, sessionId);
  alice.assertNoErrors();
  bob.assertNoErrors();
});

test('a tampered TURN credential gets no relay candidate and does not connect', async () => {
  const mallory = await connect(g1, 'turn-mallory');
  const carol = await connect(g2, 'turn-carol');
  const malloryIce = await nextIceServers(mallory);
  const carolIce = await nextIceServers(carol);
  const tampered = structuredClone(malloryIce.ice_servers);
  const turn = tampered.find((s) => s.username);
  turn.credential = createHmac('sha1', 'not-the-secret').update(turn.username).digest('base64');

  const { sessionId, caller, callee } = await relayCall(mallory, carol, tampered, carolIce.ice_servers);
  // Both finish gathering: the callee with relay candidates, the caller with
  // none, because coturn refuses its Allocate.
  await waitFor('both peers to finish gathering', () =>
    caller.pc.iceGatheringState === 'complete' && callee.pc.iceGatheringState === 'complete' && callee.localCandidates.length > 0, 15_000);
  assert.deepEqual(caller.localCandidates, []);
  await coturnLogged(new RegExp(`user <${turn.username}>.*error 401`));
  // With nothing to pair with, the connection does not come up in a while.
  await sleep(3_000);
  assert.notEqual(caller.pc.connectionState, 'connected');
  assert.notEqual(callee.pc.connectionState, 'connected');

  await hangUp(mallory, carol, sessionId);
  mallory.assertNoErrors();
  carol.assertNoErrors();
});

test('with a short TURN_TTL a fresh ice.servers frame comes before expiry and works', async () => {
  const dave = await connect(g3, 'turn-dave');
  const erin = await connect(g2, 'turn-erin');
  const first = await nextIceServers(dave, SHORT_TTL);
  checkIceServers(first, 'turn-dave', SHORT_TTL);
  const second = await nextIceServers(dave, SHORT_TTL);
  checkIceServers(second, 'turn-dave', SHORT_TTL);
  assert.ok(second.expires_at > first.expires_at, `second expiry ${second.expires_at} after first ${first.expires_at}`);
  const erinIce = await nextIceServers(erin);

  const { sessionId, caller, callee } = await relayCall(dave, erin, second.ice_servers, erinIce.ice_servers);
  await Promise.all([caller.connected(), callee.connected()]);
  await assertRelayed(caller);
  const x = await exchangeBytes(caller, callee, 64 * 1024);
  assert.equal(x.receivedByB, x.sentByA);
  assert.equal(x.receivedByA, x.sentByB);

  await hangUp(dave, erin, sessionId);
  dave.assertNoErrors();
  erin.assertNoErrors();
});
