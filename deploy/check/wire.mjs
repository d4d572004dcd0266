// goring's wire protocol for the deploy checks (crosscheck.mjs, call.mjs):
// HS256 client tokens and a WebSocket client that collects frames.
import { createHmac } from "node:crypto";
import WebSocket from "ws";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// An HS256 token for `user`, as clients get them.
export function token(secret, user) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ hash: user, name: user, iat: now, exp: now + 300 })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/// A WebSocket client of goring's public port on loopback that collects
/// frames; next(type) waits for one and returns its payload, nextOf(types)
/// waits for one of several and returns the whole frame.
export function client(port, jwt) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${jwt}`);
  const frames = [];
  const waiting = [];
  ws.on("message", (data) => {
    frames.push(JSON.parse(String(data)));
    for (const w of waiting.splice(0)) w();
  });
  const opened = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
    ws.once("unexpected-response", (_, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
  });
  const nextOf = async (types, seconds = 10) => {
    const end = Date.now() + seconds * 1000;
    for (;;) {
      const i = frames.findIndex((f) => types.includes(f.type));
      if (i >= 0) return frames.splice(i, 1)[0];
      if (Date.now() > end) throw new Error(`no ${types.join(" or ")} frame within ${seconds} s`);
      await Promise.race([new Promise((r) => waiting.push(r)), sleep(200)]);
    }
  };
  const next = async (type, seconds = 10) => (await nextOf([type], seconds)).payload;
  const send = (type, payload) => ws.send(JSON.stringify({ type, payload }));
  const unread = () => frames.map((f) => f.type);
  return { ws, opened, next, nextOf, send, unread };
}
