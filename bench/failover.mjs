// One failover measured from the outside: a caller on one goring and a
// callee on the other place calls back to back; the master is killed
// (SIGKILL) after a few good calls; the probe reports when the replica
// answered ROLE as a master, when the first call rang again, and how many
// calls failed in between. Run by bench/failover.sh; prints one JSON line.
// Usage: node --experimental-websocket failover.mjs --east PORT --west PORT
//          --secret S --master-pid PID --replica-port PORT [--run N]
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  if (fallback === undefined) throw new Error(`missing --${name}`);
  return fallback;
};
const east = Number(opt("east"));
const west = Number(opt("west"));
const secret = opt("secret");
const masterPid = Number(opt("master-pid"));
const replicaPort = opt("replica-port");
const run = Number(opt("run", "1"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

function token(user) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const iat = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ hash: user, name: user, iat, exp: iat + 600 })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/// A client whose next(types, ms) resolves with the first frame of one of
/// `types` (or null after ms).
function client(port, user) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${token(user)}`);
  const frames = [];
  let wake = null;
  let closed = false;
  ws.addEventListener("message", (e) => {
    frames.push(JSON.parse(String(e.data)));
    if (wake) wake();
  });
  ws.addEventListener("close", () => {
    closed = true;
    if (wake) wake();
  });
  const opened = new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error(`${user}: upgrade failed`)), { once: true });
  });
  const next = async (types, ms) => {
    const end = now() + ms;
    for (;;) {
      const i = frames.findIndex((f) => types.includes(f.type));
      if (i >= 0) return frames.splice(i, 1)[0];
      if (closed || now() >= end) return null;
      await Promise.race([new Promise((r) => (wake = r)), sleep(Math.max(1, end - now()))]);
    }
  };
  const send = (type, payload) => ws.send(JSON.stringify({ type, payload }));
  return { ws, opened, next, send, isClosed: () => closed };
}

const caller = client(east, `fo-caller-${run}`);
const callee = client(west, `fo-callee-${run}`);
await Promise.all([caller.opened, callee.opened]);
await sleep(300); // both registered

/// One call: start, ringing on one side and ring on the other, reject.
/// Returns true when it rang.
async function oneCall() {
  caller.send("call.start", { callee_id: `fo-callee-${run}` });
  const answer = await caller.next(["call.ringing", "error"], 3000);
  if (answer?.type !== "call.ringing") return false;
  const { session_id } = answer.payload;
  const ring = await callee.next(["call.ring"], 3000);
  if (!ring) return false;
  callee.send("call.reject", { session_id });
  await caller.next(["call.rejected"], 3000);
  return true;
}

let good = 0;
while (good < 5) if (await oneCall()) good++;

const isMaster = () => {
  const r = spawnSync("redis-cli", ["-p", replicaPort, "role"], { encoding: "utf8", timeout: 1000 });
  return r.stdout.startsWith("master");
};
let promotedAt = null;
const watch = setInterval(() => {
  if (promotedAt === null && isMaster()) promotedAt = now();
}, 20);

const killedAt = now();
process.kill(masterPid, "SIGKILL");
let failed = 0;
let rangAt = null;
const giveUp = killedAt + 60000;
while (now() < giveUp) {
  if (await oneCall()) {
    rangAt = now();
    break;
  }
  failed++;
  await sleep(50);
}
clearInterval(watch);
if (promotedAt === null && isMaster()) promotedAt = now();
const ms = (t) => (t === null ? null : Math.round(t - killedAt));
console.log(
  JSON.stringify({
    run,
    kill_to_promotion_ms: ms(promotedAt),
    kill_to_first_call_ms: ms(rangAt),
    promotion_to_first_call_ms: rangAt !== null && promotedAt !== null ? Math.round(rangAt - promotedAt) : null,
    failed_calls: failed,
    connections_closed: caller.isClosed() || callee.isClosed(),
  }),
);
caller.ws.close();
callee.ws.close();
process.exit(rangAt === null ? 1 : 0);
