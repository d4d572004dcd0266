// Cross-checks the deployment files against goring itself:
// - every variable that .env.example, docker-compose.yml and the rendered
//   Kubernetes manifests set is one goring reads (its --help lists them),
//   and .env.example documents every one;
// - the manifests agree with each other (selectors, named ports, drain);
// - against a real goring and a private redis-server on loopback: every
//   probe, Service and scrape path answers as expected, liveness stays up
//   while Redis is down, SIGTERM drains in time, and every metric the alert
//   rules and the dashboard use is one /metrics exports; a Deployment in
//   Sentinel mode, against a sentinel on loopback, becomes ready and places
//   a call.
// Usage: node crosscheck.mjs --goring BIN --deploy DIR --repo DIR RENDERED.yaml...
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { client, token } from "./wire.mjs";

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  if (i < 0 || i + 1 >= args.length) throw new Error(`missing ${name}`);
  const value = args[i + 1];
  args.splice(i, 2);
  return value;
};
const goringBin = option("--goring");
const deployDir = option("--deploy");
const repoDir = option("--repo");
const renderedFiles = args;

let problems = 0;
let checks = 0;
const fail = (msg) => {
  problems++;
  console.error(`crosscheck: FAIL ${msg}`);
};
const check = (ok, msg) => {
  checks++;
  if (!ok) fail(msg);
  return ok;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- goring's settings, from the binary ----------------------------------
const help = spawnSync(goringBin, ["--help"], { encoding: "utf8" });
if (help.status !== 0) throw new Error(`${goringBin} --help failed: ${help.stderr}`);
// help_text(): "  --flag / ENV\n      description (default X)\n"
const settings = new Map();
for (const m of help.stdout.matchAll(/^ {2}--[a-z0-9-]+ \/ ([A-Z][A-Z0-9_]*)\n {6}.*\(default (.*)\)$/gm))
  settings.set(m[1], m[2]);
if (settings.size < 10) throw new Error(`goring --help lists ${settings.size} settings: format changed?`);
const reads = (name) => settings.has(name);
const defaultPort = (name) => Number(settings.get(name));
console.log(`crosscheck: goring reads ${settings.size} variables`);

// --- .env.example --------------------------------------------------------
const envExample = readFileSync(join(deployDir, ".env.example"), "utf8");
const documented = new Set([...envExample.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
for (const name of settings.keys()) check(documented.has(name), `.env.example does not document ${name}`);
for (const name of documented) check(reads(name), `.env.example names ${name}, which goring does not read`);

// --- docker-compose.yml --------------------------------------------------
const compose = parse(readFileSync(join(deployDir, "docker-compose.yml"), "utf8"), { merge: true });
const shutdownGrace = (env) => parseDuration(env.SHUTDOWN_GRACE ?? settings.get("SHUTDOWN_GRACE"));
function parseDuration(text) {
  const m = /^(\d+)(ms|s|m)?$/.exec(String(text));
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, undefined: 1 }[m[2]];
}
const goringServices = Object.entries(compose.services).filter(([, s]) => s.image?.startsWith("goring"));
const inProfile = (profile) => ([, s]) => s.profiles?.includes(profile);
const plainGorings = goringServices.filter((e) => !inProfile("sentinel")(e) && !inProfile("cluster")(e));
check(plainGorings.length === 2, "docker-compose.yml: two goring services on plain Redis (one in the scaling profile)");
check(
  plainGorings.filter(inProfile("scaling")).length === 1,
  "docker-compose.yml: exactly one goring service in the scaling profile",
);
check(compose.services.redis?.healthcheck !== undefined, "docker-compose.yml: Redis has a healthcheck");
// The sentinel profile: two goring in Sentinel mode, naming sentinels of
// that profile, and no REDIS_ADDR beside them.
const sentinelGorings = goringServices.filter(inProfile("sentinel"));
check(sentinelGorings.length === 2, "docker-compose.yml: two goring services in the sentinel profile");
for (const [name, s] of sentinelGorings) {
  const env = s.environment ?? {};
  check(env.REDIS_ADDR === undefined, `docker-compose.yml: ${name} sets REDIS_ADDR beside REDIS_SENTINELS`);
  check(env.REDIS_SENTINEL_MASTER !== undefined, `docker-compose.yml: ${name} names the Sentinel master`);
  const sentinels = String(env.REDIS_SENTINELS ?? "").split(",").filter(Boolean);
  check(sentinels.length >= 3, `docker-compose.yml: ${name} names three sentinels or more`);
  for (const sentinel of sentinels) {
    const service = compose.services[sentinel.trim().split(":")[0]];
    check(
      service?.profiles?.includes("sentinel") && /--sentinel\b/.test(JSON.stringify(service.entrypoint ?? service.command)),
      `docker-compose.yml: ${name} names ${sentinel}, which is no sentinel of the sentinel profile`,
    );
  }
}
// The cluster profile: two goring in Cluster mode, naming as seeds nodes of
// that profile that run with cluster-enabled, and no REDIS_ADDR beside
// them; a one-shot service joins those nodes with a replica each.
const clusterGorings = goringServices.filter(inProfile("cluster"));
check(clusterGorings.length === 2, "docker-compose.yml: two goring services in the cluster profile");
const commandLine = (c) => (Array.isArray(c) ? c.join(" ") : String(c ?? ""));
const clusterNodes = Object.entries(compose.services).filter(
  ([, s]) => s.profiles?.includes("cluster") && /--cluster-enabled yes/.test(commandLine(s.command)),
);
check(clusterNodes.length >= 6, "docker-compose.yml: six cluster-enabled Redis nodes in the cluster profile");
const clusterInit = Object.entries(compose.services).find(
  ([, s]) => s.profiles?.includes("cluster") && /--cluster create/.test(JSON.stringify(s.entrypoint ?? s.command ?? "")),
);
check(
  clusterInit !== undefined && /--cluster-replicas 1/.test(JSON.stringify(clusterInit[1].entrypoint ?? clusterInit[1].command)),
  "docker-compose.yml: a service of the cluster profile runs redis-cli --cluster create --cluster-replicas 1",
);
for (const [name, s] of clusterGorings) {
  const env = s.environment ?? {};
  check(env.REDIS_ADDR === undefined, `docker-compose.yml: ${name} sets REDIS_ADDR beside REDIS_CLUSTER`);
  const seeds = String(env.REDIS_CLUSTER ?? "").split(",").map((x) => x.trim()).filter(Boolean);
  check(seeds.length >= 3, `docker-compose.yml: ${name} names three cluster seeds or more`);
  for (const seed of seeds)
    check(
      clusterNodes.some(([node]) => node === seed.split(":")[0]),
      `docker-compose.yml: ${name} names ${seed}, which is no cluster node of the cluster profile`,
    );
  check(
    clusterInit !== undefined && s.depends_on?.[clusterInit[0]]?.condition === "service_completed_successfully",
    `docker-compose.yml: ${name} waits for the cluster to be created`,
  );
}
const serverIds = new Set();
for (const [name, s] of goringServices) {
  const env = s.environment ?? {};
  for (const key of Object.keys(env)) check(reads(key), `docker-compose.yml: ${name} sets ${key}, which goring does not read`);
  serverIds.add(env.SERVER_ID);
  for (const mapping of s.ports ?? []) {
    const container = Number(String(mapping).split(":").at(-1));
    check(
      [defaultPort("PORT"), defaultPort("ADMIN_PORT")].includes(container),
      `docker-compose.yml: ${name} publishes ${container}, neither PORT nor ADMIN_PORT`,
    );
  }
  check(
    parseDuration(s.stop_grace_period) > shutdownGrace(env),
    `docker-compose.yml: ${name} stop_grace_period must exceed SHUTDOWN_GRACE`,
  );
}
check(serverIds.size === goringServices.length && !serverIds.has(undefined), "docker-compose.yml: each goring has its own SERVER_ID");

// --- Dockerfile ----------------------------------------------------------
const dockerfile = readFileSync(join(deployDir, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
for (const m of dockerfile.matchAll(/^ENV\s+([A-Z][A-Z0-9_]*)/gm))
  check(reads(m[1]), `Dockerfile sets ${m[1]}, which goring does not read`);
const exposed = new Set((/^EXPOSE\s+(.*)$/m.exec(dockerfile)?.[1] ?? "").split(/\s+/).map(Number));
check(exposed.has(defaultPort("PORT")) && exposed.has(defaultPort("ADMIN_PORT")), "Dockerfile EXPOSEs PORT and ADMIN_PORT");
check(/^USER\s+(?!0\b|root\b)/m.test(dockerfile), "Dockerfile runs as a non-root USER");
check(/^HEALTHCHECK .*goring-healthcheck/m.test(dockerfile), "Dockerfile HEALTHCHECK runs goring-healthcheck");

// --- Kubernetes manifests ------------------------------------------------
const objects = renderedFiles.flatMap((f) =>
  parseAllDocuments(readFileSync(f, "utf8")).map((d) => ({ file: f, ...d.toJS() })),
);
const matches = (selector, labels) => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
const deployments = objects.filter((o) => o.kind === "Deployment");
check(deployments.length > 0, "the rendered manifests hold a Deployment");
const probeTargets = []; // {what, port: "public"|"admin", path, expect}
for (const d of deployments) {
  const where = `${d.file}: Deployment/${d.metadata.name}`;
  const pod = d.spec.template;
  const c = pod.spec.containers.find((x) => x.name === "goring") ?? pod.spec.containers[0];
  const sameNs = (o) => o.metadata.namespace === d.metadata.namespace;
  // The environment, as the kubelet would build it.
  const env = {};
  for (const from of c.envFrom ?? []) {
    const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === from.configMapRef?.name && sameNs(o));
    if (!check(cm !== undefined, `${where}: envFrom names a ConfigMap that is not rendered`)) continue;
    Object.assign(env, cm.data);
  }
  const secretRefs = {};
  for (const e of c.env ?? []) {
    if (e.valueFrom?.secretKeyRef) secretRefs[e.name] = e.valueFrom.secretKeyRef;
    env[e.name] = e.value ?? (e.valueFrom?.fieldRef ? `fieldRef:${e.valueFrom.fieldRef.fieldPath}` : `secret:${e.name}`);
  }
  for (const key of Object.keys(env)) check(reads(key), `${where}: sets ${key}, which goring does not read`);
  check(d.spec.replicas >= 2, `${where}: at least 2 replicas`);
  const modes = ["REDIS_ADDR", "REDIS_SENTINELS", "REDIS_CLUSTER"].filter((k) => env[k] !== undefined);
  check(modes.length === 1, `${where}: one of REDIS_ADDR, REDIS_SENTINELS, REDIS_CLUSTER (sets ${modes.join(", ") || "none"})`);
  check(env.SERVER_ID === "fieldRef:metadata.name", `${where}: SERVER_ID from the pod name`);
  check(secretRefs.JWT_SECRET !== undefined, `${where}: JWT_SECRET from a Secret`);
  const adminAddr = env.ADMIN_ADDR ?? settings.get("ADMIN_ADDR");
  if (!["127.0.0.1", "::1", "localhost"].includes(adminAddr))
    check(secretRefs.ADMIN_TOKEN !== undefined, `${where}: ADMIN_ADDR ${adminAddr} needs ADMIN_TOKEN from a Secret`);
  check(pod.spec.securityContext?.runAsNonRoot === true, `${where}: runAsNonRoot`);
  check(c.securityContext?.readOnlyRootFilesystem === true, `${where}: readOnlyRootFilesystem`);
  check(c.resources?.requests && c.resources?.limits, `${where}: resource requests and limits`);
  // Ports: each named container port is PORT or ADMIN_PORT.
  const portOf = {
    [Number(env.PORT ?? settings.get("PORT"))]: "public",
    [Number(env.ADMIN_PORT ?? settings.get("ADMIN_PORT"))]: "admin",
  };
  const containerPorts = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
  for (const [name, number] of containerPorts)
    check(portOf[number] !== undefined, `${where}: container port ${name} (${number}) is neither PORT nor ADMIN_PORT`);
  const listenerOf = (port) => portOf[typeof port === "number" ? port : containerPorts.get(port)];
  for (const kind of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    const probe = c[kind];
    if (!check(probe?.httpGet, `${where}: ${kind} over HTTP`)) continue;
    const listener = listenerOf(probe.httpGet.port);
    if (check(listener, `${where}: ${kind} port ${probe.httpGet.port} is not goring's`))
      probeTargets.push({ what: `${where}: ${kind}`, kind, listener, path: probe.httpGet.path });
  }
  // Drain: preStop pause + SHUTDOWN_GRACE within terminationGracePeriodSeconds.
  const preStop = c.lifecycle?.preStop?.exec?.command ?? [];
  const pause = preStop[0] === "sleep" ? Number(preStop[1]) : 0;
  check(pause > 0, `${where}: a preStop pause (sleep N) so endpoints update before SIGTERM`);
  check(
    pod.spec.terminationGracePeriodSeconds >= pause + shutdownGrace(env) + 2,
    `${where}: terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} < preStop ${pause} s + SHUTDOWN_GRACE + 2 s`,
  );
  d.check = { env, secretRefs, listenerOf, pause, grace: pod.spec.terminationGracePeriodSeconds };
  // Objects that point at these pods.
  const podLabels = pod.metadata.labels;
  for (const o of objects.filter(sameNs)) {
    const at = `${o.file}: ${o.kind}/${o.metadata.name}`;
    if (o.kind === "Service") {
      if (!matches(o.spec.selector, podLabels)) continue;
      for (const p of o.spec.ports) {
        const listener = listenerOf(p.targetPort);
        if (check(listener, `${at}: targetPort ${p.targetPort} is not a goring port`))
          probeTargets.push({ what: `${at}: port ${p.name}`, kind: "service", listener, path: "/health" });
      }
      o.listenerOf = listenerOf;
    }
    if (o.kind === "PodDisruptionBudget") check(matches(o.spec.selector.matchLabels, podLabels), `${at}: selects the goring pods`);
    if (o.kind === "NetworkPolicy") {
      check(matches(o.spec.podSelector.matchLabels, podLabels), `${at}: selects the goring pods`);
      for (const rule of o.spec.ingress ?? []) {
        for (const p of rule.ports ?? []) {
          const listener = listenerOf(p.port);
          check(listener, `${at}: port ${p.port} is not a goring port`);
          if (listener === "admin")
            check(
              (rule.from ?? []).length > 0 &&
                rule.from.every((f) => f.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "monitoring"),
              `${at}: the admin port only from the monitoring namespace`,
            );
        }
      }
    }
    if (o.kind === "HorizontalPodAutoscaler" && o.spec.scaleTargetRef.name === d.metadata.name)
      check(o.spec.minReplicas >= 2, `${at}: minReplicas >= 2`);
  }
  check(
    objects.some((o) => o.kind === "HorizontalPodAutoscaler" && o.spec.scaleTargetRef.name === d.metadata.name && sameNs(o)),
    `${where}: a HorizontalPodAutoscaler scales it`,
  );
}
for (const sm of objects.filter((o) => o.kind === "ServiceMonitor")) {
  const at = `${sm.file}: ServiceMonitor/${sm.metadata.name}`;
  const svc = objects.find(
    (o) => o.kind === "Service" && o.metadata.namespace === sm.metadata.namespace && matches(sm.spec.selector.matchLabels, o.metadata.labels),
  );
  if (!check(svc?.listenerOf, `${at}: selects a Service of the goring pods`)) continue;
  for (const ep of sm.spec.endpoints) {
    const port = svc.spec.ports.find((p) => p.name === ep.port);
    if (check(port, `${at}: port ${ep.port} is a port of Service/${svc.metadata.name}`))
      probeTargets.push({ what: `${at}: ${ep.path}`, kind: "metrics", listener: svc.listenerOf(port.targetPort), path: ep.path });
  }
}

// --- Prometheus and Grafana: metric names --------------------------------
const rules = parse(readFileSync(join(deployDir, "prometheus", "goring-rules.yml"), "utf8"));
const expressions = rules.groups.flatMap((g) => g.rules.map((r) => ({ what: `rule ${r.alert ?? r.record}`, expr: r.expr })));
const dashboardFile = join(deployDir, "grafana", "goring-dashboard.json");
const dashboard = JSON.parse(readFileSync(dashboardFile, "utf8"));
const panels = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
for (const p of panels)
  for (const t of p.targets ?? []) expressions.push({ what: `dashboard panel "${p.title}"`, expr: t.expr });
for (const v of dashboard.templating?.list ?? [])
  if (v.type === "query") expressions.push({ what: `dashboard variable ${v.name}`, expr: v.query?.query ?? v.query });
const scrape = parse(readFileSync(join(deployDir, "prometheus", "prometheus.yml"), "utf8"));
for (const job of scrape.scrape_configs) {
  probeTargets.push({ what: `prometheus.yml job ${job.job_name}`, kind: "metrics", listener: "admin", path: job.metrics_path ?? "/metrics" });
  for (const sc of job.static_configs ?? [])
    for (const t of sc.targets) check(Number(t.split(":").at(-1)) === defaultPort("ADMIN_PORT"), `prometheus.yml: ${t} is not ADMIN_PORT`);
  for (const sd of job.dns_sd_configs ?? []) check(sd.port === defaultPort("ADMIN_PORT"), `prometheus.yml: DNS SD port is not ADMIN_PORT`);
}
// Script names in command="..." matchers are goring's Lua scripts.
for (const { what, expr } of expressions)
  for (const m of String(expr).matchAll(/command=~?"([^"]*)"/g))
    for (const name of m[1].split("|"))
      check(existsSync(join(repoDir, "redis", "scripts", `${name}.lua`)), `${what}: command "${name}" is no script in redis/scripts`);

// --- a real goring -------------------------------------------------------
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
async function get(port, path) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: await res.text() };
  } catch (e) {
    return { status: 0, body: String(e) };
  }
}
/// Polls until `ok(answer)` or the bound passes; returns the last answer.
async function until(port, path, ok, seconds = 15) {
  const end = Date.now() + seconds * 1000;
  let answer;
  do {
    answer = await get(port, path);
    if (ok(answer)) return answer;
    await sleep(200);
  } while (Date.now() < end);
  return answer;
}
const exited = (child) =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
/// alice calls bob, bob accepts, an offer is relayed, alice hangs up; and
/// one upgrade with a bad token.
async function oneCall(port, secret) {
  const refused = client(port, token("wrong-secret", "mallory"));
  check(await refused.opened.then(() => false, (e) => /401/.test(e.message)), "a wrongly signed token gets 401");
  const alice = client(port, token(secret, "alice"));
  const bob = client(port, token(secret, "bob"));
  await Promise.all([alice.opened, bob.opened]);
  alice.send("call.start", { callee_id: "bob" });
  const { session_id } = await alice.next("call.ringing");
  check((await bob.next("call.ring")).caller_id === "alice", "bob hears alice ring");
  bob.send("call.accept", { session_id });
  await alice.next("call.accepted");
  alice.send("webrtc.offer", { session_id, sdp: "v=0" });
  check((await bob.next("webrtc.offer")).sdp === "v=0", "the offer reaches bob");
  alice.send("call.end", { session_id });
  check((await bob.next("call.ended")).reason === "ended_by_user", "bob hears the call end");
  alice.send("call.accept", { session_id: "no-such-session" });
  await alice.next("error");
  alice.ws.close();
  bob.ws.close();
}

const children = [];
const stopAll = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid, "SIGKILL");
};
process.on("exit", stopAll);

// The live run takes a Deployment on one Redis address (the sentinel and
// cluster overlays name sentinels and nodes that only exist in a
// Kubernetes cluster; their variables are checked above, and
// tests/e2e_sentinel_redis_test runs Sentinel mode).
const d =
  deployments.find((x) => x.check.env.REDIS_SENTINELS === undefined && x.check.env.REDIS_CLUSTER === undefined) ??
  deployments[0];
const redisPort = await freePort();
const publicPort = await freePort();
const adminPort = await freePort();
const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
  stdio: "ignore",
});
children.push(redis);
// The Deployment's environment, with loopback addresses and free ports.
const env = { PATH: process.env.PATH };
for (const [k, v] of Object.entries(d.check.env)) {
  if (v.startsWith("fieldRef:")) env[k] = "crosscheck-pod";
  else if (v.startsWith("secret:")) env[k] = `crosscheck-${k.toLowerCase()}-${process.pid}`;
  else env[k] = v;
}
Object.assign(env, {
  PORT: String(publicPort),
  ADMIN_PORT: String(adminPort),
  BIND_ADDR: "127.0.0.1",
  ADMIN_ADDR: "127.0.0.1",
  REDIS_ADDR: `127.0.0.1:${redisPort}`,
});
delete env.REDIS_SENTINELS;
delete env.REDIS_SENTINEL_MASTER;
delete env.REDIS_CLUSTER;
const portOfListener = { public: publicPort, admin: adminPort };
const goring = spawn(goringBin, [], { env, stdio: ["ignore", "pipe", "pipe"] });
children.push(goring);
let goringLog = "";
goring.stdout.on("data", (b) => (goringLog += b));
goring.stderr.on("data", (b) => (goringLog += b));
try {
  const health = await until(adminPort, "/health", (a) => a.status === 200);
  if (!check(health.status === 200, `goring with the Deployment's environment answers /health (got ${health.status})`))
    throw new Error("goring did not start");
  // kubelet: an httpGet probe succeeds on 200-399.
  const probeOk = (a) => a.status >= 200 && a.status < 400;
  for (const t of probeTargets) {
    const answer = await until(portOfListener[t.listener], t.path, probeOk);
    check(probeOk(answer), `${t.what}: GET ${t.path} on the ${t.listener} port answered ${answer.status}`);
    if (t.kind === "metrics") check(/^# TYPE /m.test(answer.body), `${t.what}: ${t.path} is Prometheus text`);
  }
  // The image's HEALTHCHECK script.
  const hc = spawnSync("bash", [join(deployDir, "healthcheck.sh")], {
    env: { ...process.env, ADMIN_PORT: String(adminPort), ADMIN_ADDR: "0.0.0.0" },
    timeout: 10000,
  });
  check(hc.status === 0, `healthcheck.sh against the admin port exits 0 (got ${hc.status})`);

  // A call through this goring, so every metric family has samples.
  await oneCall(publicPort, env.JWT_SECRET);

  // Metrics the rules and the dashboard use.
  const metrics = (await get(adminPort, "/metrics")).body;
  const exported = new Set();
  for (const m of metrics.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    exported.add(m[1]);
    if (m[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) exported.add(m[1] + s);
  }
  check(exported.size > 10, `/metrics exports metrics (${exported.size})`);
  for (const { what, expr } of expressions) {
    const names = [...String(expr).matchAll(/\b((?:goring|process)_[a-z0-9_]+)\b/g)].map((m) => m[1]);
    check(names.length > 0 || /\bup\b/.test(expr), `${what}: uses goring's metrics`);
    for (const n of names) check(exported.has(n), `${what}: ${n} is not exported by goring's /metrics`);
  }

  // Redis goes away: liveness stays up (restarting pods would not help),
  // readiness goes down.
  process.kill(redis.pid, "SIGTERM");
  await exited(redis);
  for (const t of probeTargets.filter((x) => x.kind === "livenessProbe")) {
    const a = await get(portOfListener[t.listener], t.path);
    check(probeOk(a), `${t.what}: still ${a.status} while Redis is down (a restart would not help)`);
  }
  for (const t of probeTargets.filter((x) => x.kind === "readinessProbe")) {
    const a = await until(portOfListener[t.listener], t.path, (x) => !probeOk(x));
    check(!probeOk(a), `${t.what}: fails while Redis is down (got ${a.status})`);
  }

  // SIGTERM: exit 0 within terminationGracePeriodSeconds minus the preStop pause.
  const started = Date.now();
  process.kill(goring.pid, "SIGTERM");
  const bound = (d.check.grace - d.check.pause) * 1000;
  const code = await Promise.race([exited(goring), sleep(bound).then(() => "timeout")]);
  check(code === 0, `SIGTERM: goring exits 0 within ${bound / 1000} s (got ${code} after ${Date.now() - started} ms)`);
} catch (e) {
  fail(String(e));
} finally {
  stopAll();
}

// --- Sentinel mode, live: a Deployment that names sentinels, against a
// sentinel on loopback monitoring a private redis-server under the master
// name the Deployment uses.
const sd = deployments.find((x) => x.check.env.REDIS_SENTINELS !== undefined);
let sentinelLog = "";
if (sd) {
  const where = `${sd.file}: Deployment/${sd.metadata.name}`;
  const dir = mkdtempSync(join(tmpdir(), "goring-crosscheck-"));
  try {
    const [dataPort, sentinelPort, pub, adm] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const master = sd.check.env.REDIS_SENTINEL_MASTER;
    check(typeof master === "string" && master.length > 0, `${where}: REDIS_SENTINEL_MASTER is set`);
    children.push(
      spawn("redis-server", ["--port", String(dataPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
        stdio: "ignore",
      }),
    );
    writeFileSync(
      join(dir, "sentinel.conf"),
      `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${master} 127.0.0.1 ${dataPort} 1\n`,
    );
    await sleep(300);
    children.push(spawn("redis-server", [join(dir, "sentinel.conf"), "--sentinel"], { stdio: "ignore" }));
    const senv = { PATH: process.env.PATH };
    for (const [k, v] of Object.entries(sd.check.env)) {
      if (v.startsWith("fieldRef:")) senv[k] = "crosscheck-sentinel-pod";
      else if (v.startsWith("secret:")) senv[k] = `crosscheck-${k.toLowerCase()}-${process.pid}`;
      else senv[k] = v;
    }
    Object.assign(senv, {
      PORT: String(pub),
      ADMIN_PORT: String(adm),
      BIND_ADDR: "127.0.0.1",
      ADMIN_ADDR: "127.0.0.1",
      REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
    });
    delete senv.REDIS_ADDR;
    const sg = spawn(goringBin, [], { env: senv, stdio: ["ignore", "pipe", "pipe"] });
    children.push(sg);
    sg.stdout.on("data", (b) => (sentinelLog += b));
    sg.stderr.on("data", (b) => (sentinelLog += b));
    const ready = await until(adm, "/ready", (a) => a.status === 200);
    if (check(ready.status === 200, `${where}: goring in Sentinel mode becomes ready (got ${ready.status})`)) {
      await oneCall(pub, senv.JWT_SECRET);
      const metrics = (await get(adm, "/metrics")).body;
      check(
        metrics.includes(`goring_redis_master_info{addr="127.0.0.1:${dataPort}"} 1`),
        `${where}: goring_redis_master_info names the master the sentinel names`,
      );
    }
    process.kill(sg.pid, "SIGTERM");
    const code = await Promise.race([exited(sg), sleep(10000).then(() => "timeout")]);
    check(code === 0, `${where}: SIGTERM in Sentinel mode: goring exits 0 (got ${code})`);
  } catch (e) {
    fail(String(e));
  } finally {
    stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
if (problems) console.error(`--- goring's output ---\n${goringLog.slice(-4000)}\n${sentinelLog.slice(-4000)}`);
console.log(`crosscheck: ${checks} checks, ${problems} failed`);
process.exit(problems ? 1 : 0);
