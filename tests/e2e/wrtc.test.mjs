// A real WebRTC call without a browser: two @roamhq/wrtc peers in Node, the
// caller connected to one goring instance and the callee to another (one
// Redis between them), place a call, exchange offer, answer and ICE
// candidates through goring across the two instances, and move 256 KiB of
// random bytes each way over a data channel, checked by SHA-256. Then the
// caller hangs up and the callee hears call.ended.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { artefactDir, startGoring, startRedis, stopAll } from './lib/cluster.mjs';
import { WireClient, placeCall } from './lib/wire_client.mjs';
import { WrtcPeer, exchangeBytes } from './lib/wrtc_peer.mjs';

const peers = [];
const clients = [];
after(async () => {
  for (const p of peers) p.close();
  for (const c of clients) await c.close();
  await stopAll();
});

test('two wrtc peers on two goring instances call and pass bytes over a data channel', async () => {
  const dir = artefactDir('wrtc');
  const redis = await startRedis(dir);
  const g1 = await startGoring(dir, { redis, serverId: 'goring-1' });
  const g2 = await startGoring(dir, { redis, serverId: 'goring-2' });

  const alice = await WireClient.connect(g1.wsUrl, 'wrtc-alice', { name: 'Alice', redis });
  const bob = await WireClient.connect(g2.wsUrl, 'wrtc-bob', { name: 'Bob', redis });
  clients.push(alice, bob);

  const sessionId = await placeCall(alice, bob);

  // No ICE servers: in run.sh's namespace the peers find each other on
  // loopback host candidates, so only goring's relaying is under test.
  const caller = new WrtcPeer(alice, sessionId, 'caller');
  const callee = new WrtcPeer(bob, sessionId, 'callee');
  peers.push(caller, callee);
  await caller.start();
  await Promise.all([caller.connected(), callee.connected()]);

  // Every kind of webrtc.* frame crossed from one instance to the other.
  const kinds = (c) => new Set(c.received.map((f) => f.type).filter((t) => t.startsWith('webrtc.')));
  assert.deepEqual([...kinds(bob)].sort(), ['webrtc.ice', 'webrtc.offer']);
  assert.deepEqual([...kinds(alice)].sort(), ['webrtc.answer', 'webrtc.ice']);
  // Candidates arrive as sent, sdpMid and sdpMLineIndex included.
  const ice = bob.received.find((f) => f.type === 'webrtc.ice').payload;
  assert.equal(ice.session_id, sessionId);
  assert.ok(caller.localCandidates.includes(ice.candidate));
  assert.equal(typeof ice.sdpMid, 'string');
  assert.equal(typeof ice.sdpMLineIndex, 'number');

  const x = await exchangeBytes(caller, callee, 256 * 1024);
  assert.deepEqual(x.lengths, [256 * 1024, 256 * 1024]);
  assert.equal(x.receivedByB, x.sentByA, 'callee got what the caller sent');
  assert.equal(x.receivedByA, x.sentByB, 'caller got what the callee sent');

  alice.send('call.end', { session_id: sessionId });
  const ended = await bob.next('call.ended');
  assert.equal(ended.session_id, sessionId);
  assert.equal(ended.reason, 'ended_by_user');
  assert.equal(ended.peer_info.user_id, 'wrtc-alice');

  alice.assertNoErrors();
  bob.assertNoErrors();
});
