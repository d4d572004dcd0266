// A receiver of goring's webhooks (docs/webhooks.md) in Node, no packages:
// checks each request's Goring-Signature over the raw body, drops repeats
// by event id, and shows where the app's backend would wake the callee's
// phone. It calls no push service: the push is only printed.
//
//   WEBHOOK_SECRET=... PORT=3000 node webhook-receiver.mjs
//   goring: WEBHOOK_URL=http://127.0.0.1:3000/goring WEBHOOK_SECRET=...
import crypto from 'node:crypto';
import http from 'node:http';

const secret = process.env.WEBHOOK_SECRET ?? '';
const port = Number(process.env.PORT ?? 3000);
const tolerance = 300; // seconds between goring signing and us checking

/** True when `header` signs `raw` (a Buffer) with the shared secret. */
function verify(header, raw) {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  if (Math.abs(Date.now() / 1000 - Number(m[1])) > tolerance) return false;
  const expected = crypto.createHmac('sha256', secret).update(`${m[1]}.`).update(raw).digest();
  return crypto.timingSafeEqual(expected, Buffer.from(m[2], 'hex'));
}

// Events come at least once: keep the ids you handled (in your database,
// with the effect, in one transaction; a Set is enough for a demo).
const handled = new Set();

async function handle(event) {
  switch (event.type) {
    case 'callee.offline':
      // The callee has no connection: wake their phone. Look up their
      // device tokens, then send, until event.ring_expires_at (unix ms):
      //  - iOS, PushKit VoIP push: POST https://api.push.apple.com/3/device/<token>
      //    headers apns-push-type: voip, apns-topic: <bundle id>.voip,
      //    apns-expiration: <ring_expires_at / 1000>; body: the session id
      //    and the caller, for CallKit's incoming-call screen.
      //  - Android, FCM: POST https://fcm.googleapis.com/v1/projects/<project>/messages:send
      //    { message: { token, android: { priority: 'high', ttl: '<seconds left>s' },
      //      data: { session_id, caller_id, caller_name } } }
      // The app then connects to goring and receives call.ring at once.
      console.log(
        `push to ${event.callee_id}: ${event.caller_info?.name ?? event.caller_id} is calling ` +
          `(session ${event.session_id}, until ${new Date(event.ring_expires_at).toISOString()})`,
      );
      break;
    case 'call.ended':
      console.log(`call ${event.session_id} ended: ${event.reason}, ${event.duration_ms} ms`);
      break;
    default:
      console.log(`${event.type} ${event.session_id}: ${event.caller_id} -> ${event.callee_id}`);
  }
}

http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      if (req.method !== 'POST' || !verify(req.headers['goring-signature'], raw)) {
        res.writeHead(401).end();
        return;
      }
      const event = JSON.parse(raw);
      try {
        if (!handled.has(event.id)) {
          await handle(event);
          handled.add(event.id);
        }
        res.writeHead(204).end(); // any 2xx: delivered
      } catch (err) {
        console.error(err);
        res.writeHead(503).end(); // goring tries again, with backoff
      }
    });
  })
  .listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
