// Validates rendered Kubernetes manifests offline: each object against its
// schema (kubernetes-models 4.x, the Prometheus Operator's CRDs for the
// ServiceMonitor), then a check of our own for unknown (misspelled) keys,
// which the schemas let through. Usage: node validate.mjs RENDERED.yaml...
//
// How unknown keys are found: the compiled schema validators read every
// property their schema defines and iterate the keys of free-form maps
// (labels, data). The object is validated through proxies that record each
// key read; a key the validator never read is one the schema does not know.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);

/// The model class of an apiVersion and kind, or null.
function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
  const candidates = [];
  if (group === "monitoring.coreos.com")
    candidates.push(`@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`);
  else candidates.push(`kubernetes-models/${group ? `${group}/` : ""}${version}/${kind}`);
  for (const path of candidates) {
    try {
      return require(path)[kind];
    } catch {
      // next
    }
  }
  return null;
}

/// A deep proxy of `value` that adds "path" of every key read to `seen`.
function tracked(value, path, seen) {
  if (value === null || typeof value !== "object") return value;
  const children = Array.isArray(value) ? [] : {};
  for (const key of Object.keys(value))
    children[key] = tracked(value[key], `${path}/${key}`, seen);
  return new Proxy(children, {
    get(target, key, receiver) {
      if (typeof key === "string" && Object.hasOwn(target, key)) seen.add(`${path}/${key}`);
      return Reflect.get(target, key, receiver);
    },
  });
}

/// Every key path of a plain object (array elements by index).
function keyPaths(value, path, out) {
  if (value === null || typeof value !== "object") return out;
  for (const key of Object.keys(value)) {
    out.push(`${path}/${key}`);
    keyPaths(value[key], `${path}/${key}`, out);
  }
  return out;
}

/// Keys a validator may skip legitimately: free-form maps whose values it
/// does not read when they are strings.
const freeForm = [/\/metadata\/(labels|annotations)\/[^/]+$/, /^\/data\/[^/]+$/, /^\/stringData\/[^/]+$/];

let failures = 0;
let count = 0;
for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      console.error(`${file}: YAML: ${doc.errors[0].message}`);
      failures++;
      continue;
    }
    const object = doc.toJS();
    if (!object) continue;
    const name = `${file}: ${object.kind}/${object.metadata?.name}`;
    const Model = modelOf(object.apiVersion ?? "", object.kind ?? "");
    if (!Model) {
      console.error(`${name}: no schema for ${object.apiVersion} ${object.kind}`);
      failures++;
      continue;
    }
    count++;
    try {
      new Model(object).validate();
    } catch (e) {
      console.error(`${name}: ${e.message}`);
      failures++;
    }
    // The validator runs on `this`: hand it the tracked object.
    const seen = new Set();
    try {
      Model.prototype.validate.call(tracked(object, "", seen));
    } catch {
      // reported above
    }
    const unknown = keyPaths(object, "", []).filter(
      (p) => !seen.has(p) && !freeForm.some((re) => re.test(p)) && !/\/\d+$/.test(p),
    );
    // One line per unknown key, not one for each key below it.
    for (const p of unknown.filter((p) => !unknown.some((q) => p.startsWith(`${q}/`)))) {
      console.error(`${name}: unknown key ${p} (misspelled, or not in ${object.apiVersion} ${object.kind})`);
      failures++;
    }
  }
}
if (count === 0) {
  console.error("validate: no objects");
  process.exit(1);
}
console.log(`validate: ${count} objects, ${failures} problems`);
process.exit(failures ? 1 : 0);
