// One call through running goring instances on loopback, for
// deploy/check-image.sh: alice connects to the first public port and calls
// bob on the second (the same one for a single instance), bob accepts, offer,
// answer and a candidate are relayed, alice hangs up. Exits 0 when every
// frame arrived as expected, within 10 s each.
// Usage: node call.mjs --secret JWT_SECRET PORT [PORT]
import { client, token } from "./wire.mjs";

const args = process.argv.slice(2);
const at = args.indexOf("--secret");
if (at < 0 || at + 1 >= args.length) throw new Error("usage: call.mjs --secret JWT_SECRET PORT [PORT]");
const secret = args.splice(at, 2)[1];
const [alicePort, bobPort = alicePort] = args.map(Number);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A bound on the whole run, should a close handshake never finish.
setTimeout(() => process.exit(1), 60_000).unref();
const expect = (ok, what) => {
  if (!ok) throw new Error(what);
};

const alice = client(alicePort, token(secret, "alice"));
const bob = client(bobPort, token(secret, "bob"));
try {
  await Promise.all([alice.opened, bob.opened]);
  // The upgrade completes before goring has registered bob in Redis, so a
  // call placed at once may find him offline: try again for up to 10 s.
  let session_id;
  for (const end = Date.now() + 10_000; ; ) {
    alice.send("call.start", { callee_id: "bob" });
    const answer = await alice.nextOf(["call.ringing", "error"]);
    if (answer.type === "call.ringing") {
      session_id = answer.payload.session_id;
      break;
    }
    expect(answer.payload.code === "user_offline" && Date.now() < end, `call.start answered ${JSON.stringify(answer.payload)}`);
    await sleep(200);
  }
  const ring = await bob.next("call.ring");
  expect(ring.session_id === session_id && ring.caller_id === "alice", `bob's call.ring ${JSON.stringify(ring)}`);
  bob.send("call.accept", { session_id });
  expect((await alice.next("call.accepted")).session_id === session_id, "alice's call.accepted is for this call");
  alice.send("webrtc.offer", { session_id, sdp: "v=0 offer" });
  expect((await bob.next("webrtc.offer")).sdp === "v=0 offer", "the offer reaches bob as sent");
  bob.send("webrtc.answer", { session_id, sdp: "v=0 answer" });
  expect((await alice.next("webrtc.answer")).sdp === "v=0 answer", "the answer reaches alice as sent");
  const candidate = "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host";
  bob.send("webrtc.ice", { session_id, candidate, sdpMid: "0", sdpMLineIndex: 0 });
  expect((await alice.next("webrtc.ice")).candidate === candidate, "bob's candidate reaches alice");
  alice.send("call.end", { session_id });
  const ended = await bob.next("call.ended");
  expect(ended.reason === "ended_by_user", `bob's call.ended: ${JSON.stringify(ended)}`);
  for (const [name, c] of [["alice", alice], ["bob", bob]])
    expect(!c.unread().includes("error"), `${name} got an error frame: ${c.unread().join(", ")}`);
  console.log(`call: alice on :${alicePort} called bob on :${bobPort}; ring, accept, offer, answer, candidate and hang-up relayed`);
} catch (e) {
  console.error(`call: FAIL ${e.message}`);
  process.exitCode = 1;
} finally {
  alice.ws.close();
  bob.ws.close();
}
