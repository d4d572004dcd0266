"""A receiver of goring's webhooks (docs/webhooks.md) in Python, standard
library only: checks each request's Goring-Signature over the raw body,
drops repeats by event id, and shows where the app's backend would wake the
callee's phone. It calls no push service: the push is only printed.

    WEBHOOK_SECRET=... PORT=3000 python3 webhook_receiver.py
    goring: WEBHOOK_URL=http://127.0.0.1:3000/goring WEBHOOK_SECRET=...
"""
import hashlib
import hmac
import json
import os
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ.get("WEBHOOK_SECRET", "").encode()
PORT = int(os.environ.get("PORT", "3000"))
TOLERANCE = 300  # seconds between goring signing and us checking
SIGNATURE = re.compile(r"^t=(\d+),v1=([0-9a-f]{64})$")

# Events come at least once: keep the ids you handled (in your database,
# with the effect, in one transaction; a set is enough for a demo).
handled = set()


def verify(header, raw):
    """True when `header` signs `raw` (bytes) with the shared secret."""
    m = SIGNATURE.match(header or "")
    if not m or abs(time.time() - int(m.group(1))) > TOLERANCE:
        return False
    expected = hmac.new(SECRET, m.group(1).encode() + b"." + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, m.group(2))


def handle(event):
    if event["type"] == "callee.offline":
        # The callee has no connection: wake their phone until
        # event["ring_expires_at"] (unix ms), e.g.
        #  - iOS, PushKit VoIP push: POST https://api.push.apple.com/3/device/<token>
        #    with apns-push-type: voip and apns-topic: <bundle id>.voip
        #  - Android, FCM: POST https://fcm.googleapis.com/v1/projects/<project>/messages:send
        #    with {"message": {"token": ..., "android": {"priority": "high"},
        #          "data": {"session_id": ..., "caller_id": ...}}}
        # The app then connects to goring and receives call.ring at once.
        caller = event.get("caller_info", {}).get("name") or event["caller_id"]
        print(f"push to {event['callee_id']}: {caller} is calling (session {event['session_id']})",
              flush=True)
    elif event["type"] == "call.ended":
        print(f"call {event['session_id']} ended: {event['reason']}, {event['duration_ms']} ms",
              flush=True)
    else:
        print(f"{event['type']} {event['session_id']}: {event['caller_id']} -> "
              f"{event['callee_id']}", flush=True)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verify(self.headers.get("Goring-Signature"), raw):
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(raw)
        try:
            if event["id"] not in handled:
                handle(event)
                handled.add(event["id"])
            self.send_response(204)  # any 2xx: delivered
        except Exception as err:  # goring tries again, with backoff
            print(err, flush=True)
            self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    print(f"listening on 127.0.0.1:{PORT}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
