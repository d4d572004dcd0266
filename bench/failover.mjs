// One failover measured from the outside: a caller on one goring and a
// callee on the other place calls back to back; the master is killed
// (SIGKILL) after a few good calls; the probe reports when the replica
// answered ROLE as a master, when the first call rang again, and how many
// calls failed in between (and with which error). Run by bench/failover.sh
// (Sentinel) and bench/cluster-failover.sh (Cluster); prints one JSON line.
//
// Cluster mode (--cluster-ports): the killed master is --victim-port; the
// looping caller's keys live on it, and before the kill calls in progress
// (accepted, relaying webrtc.ice both ways every 100 ms) are set up whose
// caller's keys, callee's keys or session (exactly one of them) live on it,
// plus one that touches it not at all. The probe also reports when every
// surviving node (--cluster-ports) said cluster_state:ok again, and what
// became of each call in progress: went on, ended (with its reason) or
// stalled; the calls that went on are then hung up. With --admin-ports it
// polls each instance's /ready too: when both were ready again.
// Usage: node --experimental-websocket failover.mjs --east PORT --west PORT
//          --secret S --master-pid PID --replica-port PORT [--run N]
//          [--cluster-ports P,P,... --victim-port PORT] [--admin-ports A,B]
import { createHmac } from "node:crypto";
import net from "node:net";

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
const replicaPort = Number(opt("replica-port"));
const run = Number(opt("run", "1"));
const survivors = opt("cluster-ports", "").split(",").filter(Boolean).map(Number);
const cluster = survivors.length > 0;
const victimPort = cluster ? Number(opt("victim-port")) : 0;
const adminPorts = opt("admin-ports", "").split(",").filter(Boolean).map(Number);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
// Bounded: whatever happens, the probe ends within two minutes.
setTimeout(() => {
  console.error("failover.mjs: gave up after 120 s");
  process.exit(1);
}, 120000).unref();

/// A Redis connection for the probe's own questions (ROLE, INFO, CLUSTER
/// ...); asynchronous, so that polling every 20 ms never stalls the clients.
/// A lost connection (Sentinel kills the clients of the replica it promotes)
/// is made again by the next question.
function redis(port) {
  let sock = null;
  let buf = Buffer.alloc(0);
  let waiting = [];
  const parse = (i) => {
    const nl = buf.indexOf("\r\n", i);
    if (nl < 0) return null;
    const line = buf.toString("utf8", i + 1, nl);
    switch (String.fromCharCode(buf[i])) {
      case "+":
      case ":":
        return { value: line, end: nl + 2 };
      case "-":
        return { value: new Error(line), end: nl + 2 };
      case "$": {
        const n = Number(line);
        if (n < 0) return { value: null, end: nl + 2 };
        if (buf.length < nl + 4 + n) return null;
        return { value: buf.toString("utf8", nl + 2, nl + 2 + n), end: nl + 4 + n };
      }
      case "*": {
        const out = [];
        let end = nl + 2;
        for (let k = 0; k < Number(line); k++) {
          const r = parse(end);
          if (!r) return null;
          out.push(r.value);
          end = r.end;
        }
        return { value: out, end };
      }
      default:
        throw new Error(`port ${port}: not RESP`);
    }
  };
  const connect = () => {
    const s = net.connect(port, "127.0.0.1");
    const mine = (waiting = []);
    buf = Buffer.alloc(0);
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      for (let r; (r = parse(0)); ) {
        buf = buf.subarray(r.end);
        mine.shift().resolve(r.value);
      }
    });
    const fail = (e) => {
      if (sock === s) sock = null;
      mine.splice(0).forEach((w) => w.reject(e));
    };
    s.on("error", fail);
    s.on("close", () => fail(new Error(`port ${port}: closed`)));
    return s;
  };
  const cmd = (...argv) =>
    new Promise((resolve, reject) => {
      sock ??= connect();
      waiting.push({ resolve, reject });
      sock.write(`*${argv.length}\r\n${argv.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join("")}`);
    });
  return { cmd, close: () => sock?.destroy() };
}
const field = (info, name) => (String(info).match(new RegExp(`^${name}:(.*?)\\r?$`, "m")) || [])[1];

function token(user) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const iat = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ hash: user, name: user, iat, exp: iat + 600 })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/// A client whose next(types, ms, session) resolves with the first frame of
/// one of `types` (of that session, when given), or null after ms. A frame
/// `onFrame` returns true for is consumed there.
function client(port, user, onFrame = () => false) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${token(user)}`);
  const frames = [];
  let wake = null;
  const self = { user, closed: null };
  ws.addEventListener("message", (e) => {
    const f = JSON.parse(String(e.data));
    if (!onFrame(f)) frames.push(f);
    if (wake) wake();
  });
  ws.addEventListener("close", (e) => {
    self.closed = e.code;
    if (wake) wake();
  });
  const opened = new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error(`${user}: upgrade failed`)), { once: true });
  });
  const next = async (types, ms, session) => {
    const end = now() + ms;
    const wanted = (f) => types.includes(f.type) && (!session || !f.payload?.session_id || f.payload.session_id === session);
    for (;;) {
      const i = frames.findIndex(wanted);
      if (i >= 0) return frames.splice(i, 1)[0];
      if (self.closed !== null || now() >= end) return null;
      await Promise.race([new Promise((r) => (wake = r)), sleep(Math.max(1, end - now()))]);
    }
  };
  const send = (type, payload) => ws.send(JSON.stringify({ type, payload }));
  return Object.assign(self, { ws, opened, next, send });
}

// -- Cluster: which keys live on the master to be killed ---------------------

const asker = cluster ? redis(survivors[0]) : null;
let victimRanges = [];
if (cluster) {
  const victim = redis(victimPort);
  const mine = String(await victim.cmd("CLUSTER", "NODES"))
    .split("\n")
    .find((l) => l.includes("myself"));
  victim.close();
  victimRanges = mine
    .split(" ")
    .slice(8)
    .filter((s) => /^\d+(-\d+)?$/.test(s))
    .map((s) => s.split("-").map(Number))
    .map(([a, b]) => [a, b ?? a]);
}
const onVictim = async (key) => {
  const slot = Number(await asker.cmd("CLUSTER", "KEYSLOT", key));
  return victimRanges.some(([a, b]) => slot >= a && slot <= b);
};
// A user's presence and call key share one slot; ids here need no tag escape.
const userOnVictim = (u) => onVictim(`ws:user:{${u}}`);
/// The first id `${stem}${k}` (k = 0, 1, ...) whose keys live on the victim
/// (or, with want = false, elsewhere).
async function pickUser(stem, want) {
  for (let k = 0; ; k++) if ((await userOnVictim(`${stem}${k}`)) === want) return `${stem}${k}`;
}

const loopCaller = cluster ? await pickUser(`fo-${run}-caller-`, true) : `fo-caller-${run}`;
const loopCallee = `fo-callee-${run}`;
const caller = client(east, loopCaller);
const callee = client(west, loopCallee);
await Promise.all([caller.opened, callee.opened]);
await sleep(300); // both registered

/// One call: start, ringing on one side and ring on the other, reject.
/// Returns null when it rang, else why not (the error code, or what did not
/// come within 3 s).
async function oneCall() {
  caller.send("call.start", { callee_id: loopCallee });
  const answer = await caller.next(["call.ringing", "error"], 3000);
  if (answer?.type !== "call.ringing") return answer?.payload?.code ?? "no call.ringing in 3 s";
  const { session_id } = answer.payload;
  const ring = await callee.next(["call.ring"], 3000, session_id);
  if (!ring) {
    caller.send("call.end", { session_id }); // else the caller stays busy
    return "no call.ring in 3 s";
  }
  callee.send("call.reject", { session_id });
  await caller.next(["call.rejected"], 3000, session_id);
  return null;
}

// -- Cluster: calls in progress ----------------------------------------------

/// One accepted call that relays webrtc.ice both ways; `on` lists which of
/// its keys live on the victim (caller, callee or session; channel: a
/// user's pub/sub channel, whatever else).
async function callInProgress(kind, index) {
  const c = await pickUser(`fo-${run}-${kind}-${index}-a`, kind === "caller");
  const e = await pickUser(`fo-${run}-${kind}-${index}-b`, kind === "callee");
  const call = { kind, caller_id: c, callee_id: e, errors: {}, ended: null, heard: [[], []] };
  const hook = (side) => (f) => {
    if (f.type === "webrtc.ice") call.heard[side].push(now());
    else if (f.type === "call.ended" && f.payload.session_id === call.sid && !call.ended)
      call.ended = { reason: f.payload.reason, at: now() };
    else if (f.type === "error") call.errors[f.payload.code] = (call.errors[f.payload.code] ?? 0) + 1;
    else return false;
    return true;
  };
  call.a = client(east, c, hook(0));
  call.b = client(west, e, hook(1));
  await Promise.all([call.a.opened, call.b.opened]);
  await sleep(200);
  // The session's slot is the server's pick: call again until it lies
  // where this kind of call wants it.
  for (let tries = 0; ; tries++) {
    if (tries === 30) throw new Error(`${kind} call: no session in the right slot in 30 tries`);
    call.a.send("call.start", { callee_id: e });
    const ringing = await call.a.next(["call.ringing"], 3000);
    if (!ringing) throw new Error(`${kind} call: no call.ringing`);
    call.sid = ringing.payload.session_id;
    await call.b.next(["call.ring"], 3000, call.sid);
    if ((await onVictim(`call:session:${call.sid}`)) === (kind === "session")) break;
    call.a.send("call.end", { session_id: call.sid });
    for (let t = now(); !call.ended && now() - t < 3000; ) await sleep(20);
    call.ended = null;
  }
  call.b.send("call.accept", { session_id: call.sid });
  if (!(await call.a.next(["call.accepted"], 3000, call.sid))) throw new Error(`${kind} call: not accepted`);
  call.a.send("webrtc.offer", { session_id: call.sid, sdp: "v=0 offer" });
  call.b.send("webrtc.answer", { session_id: call.sid, sdp: "v=0 answer" });
  if (!(await call.b.next(["webrtc.offer"], 3000)) || !(await call.a.next(["webrtc.answer"], 3000)))
    throw new Error(`${kind} call: offer or answer not relayed`);
  call.on = [kind];
  for (const u of [c, e]) if (await onVictim(`ws:signal:${u}`)) call.on.push(`channel of ${u === c ? "caller" : "callee"}`);
  return call;
}

const calls = [];
if (cluster)
  for (const [kind, count] of [["caller", 2], ["callee", 2], ["session", 2], ["none", 1]])
    for (let i = 0; i < count; i++) calls.push(await callInProgress(kind, i));
let seq = 0;
const relay = setInterval(() => {
  seq++;
  for (const call of calls)
    if (!call.ended && !call.hungUp)
      for (const side of [call.a, call.b])
        if (side.closed === null) side.send("webrtc.ice", { session_id: call.sid, candidate: `candidate:${seq}` });
}, 100);

let good = 0;
while (good < 5) if ((await oneCall()) === null) good++;

// -- The kill, and what is polled meanwhile ---------------------------------

const replica = redis(replicaPort);
const victim = cluster ? redis(victimPort) : null;
// The replica has every write the master took (offsets equal), 2 s at most.
let inSync = !cluster;
for (let t = now(); !inSync && now() - t < 2000; await sleep(10)) {
  const [m, r] = await Promise.all([victim.cmd("INFO", "replication"), replica.cmd("INFO", "replication")]);
  inSync = field(m, "master_repl_offset") === field(r, "slave_repl_offset");
}
victim?.close();
const nodes = survivors.map(redis);
let promotedAt = null;
let failAt = null;
let okAt = null;
// Per instance: not ready seen since the kill, and ready again after that.
const readiness = adminPorts.map(() => ({ down: false, readyAt: null }));
const ready = (port) =>
  fetch(`http://127.0.0.1:${port}/ready`).then(
    (r) => r.ok,
    () => false,
  );
let polling = false;
const poll = async () => {
  if (polling) return;
  polling = true;
  try {
    const [oks, role, ...infos] = await Promise.all([
      Promise.all(adminPorts.map(ready)),
      replica.cmd("ROLE"),
      ...nodes.map((n) => n.cmd("CLUSTER", "INFO")),
    ]);
    const t = now();
    oks.forEach((ok, i) => {
      const r = readiness[i];
      if (!ok) [r.down, r.readyAt] = [true, null];
      else if (r.down && r.readyAt === null) r.readyAt = t;
    });
    if (promotedAt === null && role[0] === "master") promotedAt = t;
    const states = infos.map((i) => field(i, "cluster_state"));
    if (failAt === null && states.includes("fail")) failAt = t;
    if (okAt === null && promotedAt !== null && states.every((s) => s === "ok")) okAt = t;
  } catch {
    // a node that does not answer now is asked again in 20 ms
  } finally {
    polling = false;
  }
};
const watch = setInterval(poll, 20);

const killedAt = now();
for (const call of calls) call.heardBefore = call.heard.map((h) => h.length);
process.kill(masterPid, "SIGKILL");
const failedWith = {};
let failed = 0;
let rangAt = null;
const giveUp = killedAt + 60000;
while (now() < giveUp) {
  const why = await oneCall();
  if (why === null) {
    rangAt = now();
    break;
  }
  failed++;
  failedWith[why] = (failedWith[why] ?? 0) + 1;
  await sleep(50);
}
// Calls in progress: at least four call checks (CALL_CHECK_INTERVAL 2 s)
// after the later of the first call that rang and cluster_state:ok; and
// both instances ready again, 15 s after that at most.
const allReady = () => readiness.every((r) => r.readyAt !== null);
if (cluster) {
  const settled = Math.max(rangAt ?? 0, okAt ?? giveUp, killedAt);
  while (now() < settled + 8000 || (!allReady() && now() < settled + 15000)) await sleep(100);
}
clearInterval(watch);
await poll();

/// What became of a call in progress, judged on the last second: ice heard
/// both ways (went on), a call.ended (ended), a closed socket, or silence.
function outcome(call) {
  const t = now();
  if (call.ended) return `ended: ${call.ended.reason}`;
  if (call.a.closed !== null || call.b.closed !== null) return `closed: ${call.a.closed ?? call.b.closed}`;
  return call.heard.every((h) => h.length && t - h[h.length - 1] < 1000) ? "went on" : "stalled";
}
/// The longest silence in either direction after the kill, in ms.
function longestGap(call) {
  let gap = 0;
  call.heard.forEach((h, side) => {
    let last = h[call.heardBefore[side] - 1] ?? killedAt;
    for (const t of [...h.slice(call.heardBefore[side]), now()]) {
      gap = Math.max(gap, t - last);
      last = t;
    }
  });
  return Math.round(gap);
}
const inProgress = [];
for (const call of calls) {
  const row = { on: call.on.join("+"), outcome: outcome(call), longest_gap_ms: longestGap(call), errors: call.errors };
  if (row.outcome === "went on" || row.outcome === "stalled") {
    // Hung up: the callee must hear ended_by_user.
    call.hungUp = true;
    call.a.send("call.end", { session_id: call.sid });
    for (let t = now(); !call.ended && now() - t < 3000; ) await sleep(20);
    row.hang_up = call.ended?.reason ?? "no call.ended in 3 s";
  }
  inProgress.push(row);
}
clearInterval(relay);
const ms = (t, from = killedAt) => (t === null || from === null ? null : Math.round(t - from));
const result = {
  run,
  kill_to_promotion_ms: ms(promotedAt),
  kill_to_first_call_ms: ms(rangAt),
  promotion_to_first_call_ms: ms(rangAt, promotedAt),
  failed_calls: failed,
  failed_with: failedWith,
  connections_closed: caller.closed !== null || callee.closed !== null,
};
if (cluster)
  Object.assign(result, {
    victim_port: victimPort,
    replica_in_sync_at_kill: inSync,
    kill_to_cluster_fail_ms: ms(failAt),
    kill_to_cluster_ok_ms: ms(okAt),
    cluster_ok_to_first_call_ms: ms(rangAt, okAt),
    // null: not ready again by the end of the run.
    cluster_ok_to_ready_ms: readiness.map((r) => ms(r.readyAt, okAt)),
    in_progress: inProgress,
  });
console.log(JSON.stringify(result));
for (const c of [caller, callee, ...calls.flatMap((call) => [call.a, call.b])]) c.ws.close();
await sleep(300);
process.exit(rangAt === null ? 1 : 0);
