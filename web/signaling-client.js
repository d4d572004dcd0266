/**
 * goring's signaling client: one WebSocket to goring, one call at a time,
 * WebRTC audio peer to peer. An ES module without dependencies; it runs in
 * browsers and, with `WebSocket`, `RTCPeerConnection` and `getUserMedia`
 * given as options, in Node.
 *
 * It keeps the reference README's API (`connect`, `startCall`, `acceptCall`,
 * `rejectCall`, `endCall`; `onIncomingCall(callerId, sessionId)`,
 * `onCallEnded(reason)`, `onRemoteStream(stream)`, `onError(code, message)`)
 * and adds what the reference lacks: `call.ringing`, reconnection with
 * backoff across several server URLs, calls that resume after a drop,
 * token refresh, ICE servers from the server, and state callbacks.
 *
 * @example
 *   import { SignalingClient } from './signaling-client.js';
 *   const client = new SignalingClient('wss://signal.example', jwt);
 *   client.onIncomingCall = (callerId, sessionId, callerInfo) => client.acceptCall(sessionId);
 *   client.onRemoteStream = (stream) => { audio.srcObject = stream; };
 *   client.onCallEnded = (reason) => console.log('call ended:', reason);
 *   client.connect();
 *   client.startCall('bob');
 *
 * Constructor: `new SignalingClient(serverUrl | serverUrls, token, options)`.
 * A server URL is `ws[s]://host[:port]` (then `/ws` is added) or a full
 * WebSocket URL. With several, the client fails over to the next one when a
 * connection fails or the server drains (close 1012).
 *
 * Options (all optional):
 * - `WebSocket`, `RTCPeerConnection`: constructors (default: the globals).
 * - `getUserMedia`: `() => Promise<MediaStream>` for the microphone
 *   (default: `navigator.mediaDevices.getUserMedia({ audio: true })`).
 * - `tokenTransport`: `'subprotocol'` (default: `Sec-WebSocket-Protocol:
 *   goring, goring.bearer.<jwt>`, which keeps the token out of URLs and
 *   access logs) or `'query'` (`?token=`, the reference's way).
 * - `refreshToken`: `async () => newJwt`. Called ahead of the token's `exp`
 *   (sent as `auth.refresh` on the open connection) and when the server
 *   closes with 4001; without it a 4001 stops the client.
 * - `refreshAheadSeconds`: how long before `exp` to refresh (default 60).
 * - `iceServers`: RTCIceServer dicts until the server sends `ice.servers`
 *   (default none: no public STUN server is ever used unless given).
 * - `iceTransportPolicy`: `'all'` (default) or `'relay'` (TURN only).
 * - `reconnect`: `false`, or `{ initialDelayMs: 500, maxDelayMs: 15000,
 *   factor: 2 }`; each delay gets up to half of it as random jitter.
 * - `stableAfterMs`: how long a connection must stay up before the backoff
 *   starts over from `initialDelayMs` (default 10000), so that a server that
 *   accepts and then closes at once is not retried ever faster.
 * - `resumeTimeoutMs`: how long after reconnecting during a call to wait
 *   for `call.resumed` before the call counts as over (default 5000).
 * - `mediaTimeoutMs`: how long an accepted call may go without its media
 *   connecting: after one such wait the caller restarts ICE, after a second
 *   the call ends as `media_timeout` (default 30000).
 * - any `on...` callback below.
 *
 * Callbacks (assign as properties or pass as options):
 * - `onConnectionChange(state, detail)`: `connecting`, `open`,
 *   `reconnecting` (detail: `{ code, reason, delayMs, attempt }`), `closed`
 *   (detail: `{ code, reason }`; final: `disconnect()`, 4000 taken over,
 *   4001 without `refreshToken`, 4002 kicked).
 * - `onStateChange(state, call)`: call states `idle`, `outgoing` (call.start
 *   sent), `ringing` (the callee's phone rings), `incoming`, `accepted`
 *   (media connecting), `connected` (media flows), `ended` (then `idle`).
 * - `onIncomingCall(callerId, sessionId, callerInfo)`
 * - `onRinging(sessionId, calleeId, { calleeOffline })`: `calleeOffline` is
 *   true when the callee had no connection and the server asked your backend
 *   to wake their phone (`OFFLINE_RING_TIMEOUT`, docs/webhooks.md): show
 *   "waking their phone…" rather than "ringing".
 * - `onCallAccepted(sessionId, calleeInfo)`
 * - `onCallRejected(sessionId, calleeInfo)`
 * - `onCallEnded(reason, call)`: a server reason (`cancelled`,
 *   `ended_by_user`, `no_answer`, `peer_disconnected`, `session_lost`), an
 *   error code when `call.start` was refused (`user_busy`, `user_offline`,
 *   ...), or a local one: `hangup` (you ended it), `declined` (you rejected
 *   it), `rejected` (the callee did), `media_failed` (no microphone),
 *   `media_timeout` (the audio never connected), `not_resumed` (it ended
 *   while you were away), `replaced`, `token_expired`, `disconnected`.
 * - `onRemoteStream(stream)`
 * - `onResumed(call)`: the server handed the call back after a reconnect.
 * - `onError(code, message)`: server `error` frames, plus local codes
 *   `not_connected` (a call method while the connection is down),
 *   `connection`, `media` (no microphone), `webrtc` and `token`.
 * - `onTokenExpired()`: the token ran out (close 4001 or refused upgrade).
 * - `onTokenRefreshed(expiresAt)`: the server took the new token.
 * - `onIceServers(iceServers, payload)`: a new list came (`ice.servers`).
 *
 * Methods: `connect()`; `disconnect()` (for good; a call ends at once);
 * `startCall(calleeId)` and `acceptCall(sessionId?)` (both need the
 * connection: while it is down they return false and report
 * `not_connected`); `rejectCall(sessionId?)` and `endCall()` (hangs up, or
 * cancels a call still ringing): both end the call here at once and, if the
 * connection is down, are sent once the server hands the call back;
 * `setToken(jwt)` (next connections, and `auth.refresh` now when
 * connected). Call methods return false (and report `onError`) when they do
 * not apply.
 *
 * Read-only properties: `connectionState`, `callState`, `call` (a copy:
 * `{ sessionId, peerId, peerInfo, role, state, calleeOffline }` or null;
 * `calleeOffline` only on a caller's ringing call), `peerConnection`,
 * `localStream`, `remoteStream`, `iceServers`.
 */

const DEFAULT_RECONNECT = { initialDelayMs: 500, maxDelayMs: 15_000, factor: 2 };
/** Close codes after which reconnecting is pointless or unwanted. */
const FINAL_CLOSE = new Set([4000, 4002]);
/**
 * Close codes that mean "you send too much or read too little" (1008, 1009,
 * 1013) or "the server cannot take you now" (1011: registration failed,
 * e.g. Redis is down): wait longer.
 */
const SLOW_DOWN_CLOSE = new Set([1008, 1009, 1011, 1013]);
/**
 * Close codes with which the server has ended the call already
 * (docs/protocol.md, "Close codes"): there is no call.resumed to wait for.
 */
const CALL_ENDED_CLOSE = new Set([1008, 1009, 1011, 1013]);
/** The longest wait between token refreshes that gave no later `exp`. */
const MAX_REFRESH_BACKOFF_MS = 60_000;

/** The claims of a JWT (its middle part, UTF-8 JSON), or null. Not a verification. */
export function tokenClaims(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(decodeBase64(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    return json !== null && typeof json === 'object' ? json : null;
  } catch {
    return null;
  }
}

/** The `exp` claim of a JWT (unix seconds), or null. Not a verification. */
export function tokenExpiry(token) {
  const claims = tokenClaims(token);
  return claims && typeof claims.exp === 'number' ? claims.exp : null;
}

function decodeBase64(b64) {
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** `ws://host:port` -> `ws://host:port/ws`; full URLs stay as they are. */
function wsEndpoint(serverUrl) {
  const url = new URL(serverUrl);
  if (url.pathname === '' || url.pathname === '/') url.pathname = '/ws';
  return url;
}

/** The DTLS fingerprint of an SDP: a new one means a new peer connection. */
function fingerprint(sdp) {
  const m = /^a=fingerprint:(.*)$/m.exec(sdp ?? '');
  return m ? m[1].trim() : null;
}

export class SignalingClient {
  constructor(serverUrls, token, options = {}) {
    const urls = Array.isArray(serverUrls) ? serverUrls : [serverUrls];
    if (urls.length === 0) throw new Error('SignalingClient: no server URL');
    this._urls = urls.map((u) => wsEndpoint(u).toString());
    this._urlIndex = 0;
    this._token = token;
    this._opts = options;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._RTCPeerConnection = options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    this._getUserMedia =
      options.getUserMedia ??
      (() => globalThis.navigator.mediaDevices.getUserMedia({ audio: true, video: false }));
    this._reconnect = options.reconnect === false ? null : { ...DEFAULT_RECONNECT, ...(options.reconnect ?? {}) };
    this._iceServers = options.iceServers ?? [];
    for (const [key, value] of Object.entries(options))
      if (key.startsWith('on') && typeof value === 'function') this[key] = value;

    this._ws = null;
    this._connectionState = 'idle';
    this._wanted = false; // connect() called and not disconnect()ed
    this._attempt = 0; // reconnect attempts since a connection last stayed up
    this._reconnectTimer = null;
    this._stableTimer = null;
    this._refreshTimer = null;
    this._refreshFloorMs = 1000; // grows while refreshes bring no later exp
    this._resumeTimer = null;

    this._call = null; // { sessionId, peerId, peerInfo, role, state }
    this._pc = null;
    this._localStream = null;
    this._mediaPromise = null;
    this._remoteStream = null;
    this._pendingIce = [];
    this._pcQueue = Promise.resolve();
    this._answerUnsent = false; // the last answer was made while the connection was down
    this._mediaTimer = null;
    this._mediaRestarts = 0;
    // A call.start cancelled before its session id came: it is ended when
    // it shows up (call.ringing, or call.resumed after a drop).
    this._cancelWhenRinging = false;
    this._cancelTimer = null;
    // { sessionId, type }: call.end or call.reject to send once the server
    // hands that call back (it was ended here while the connection was down).
    this._sendOnResume = null;
    this._quietUntil = 0;
  }

  get connectionState() {
    return this._connectionState;
  }
  get callState() {
    return this._call ? this._call.state : 'idle';
  }
  get call() {
    return this._call ? { ...this._call } : null;
  }
  get peerConnection() {
    return this._pc;
  }
  get localStream() {
    return this._localStream;
  }
  get remoteStream() {
    return this._remoteStream;
  }
  get iceServers() {
    return this._iceServers.slice();
  }

  // ---- connection ------------------------------------------------------

  /** Opens the connection (and keeps it open, reconnecting, until disconnect()). */
  connect() {
    this._wanted = true;
    if (this._ws || this._reconnectTimer) return;
    this._open();
  }

  /** Closes the connection for good; a call in progress ends (close frame). */
  disconnect() {
    this._wanted = false;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    clearTimeout(this._refreshTimer);
    clearTimeout(this._stableTimer);
    this._attempt = 0;
    // The close frame ends everything server-side: nothing left to cancel.
    this._clearCancel();
    this._sendOnResume = null;
    this._endLocally('disconnected');
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      this._detach(ws);
      try {
        ws.close(1000, 'bye');
      } catch {
        // already closed
      }
    }
    this._setConnection('closed', { code: 1000, reason: 'disconnected' });
  }

  /**
   * A new token for the same user: used for the next connection, and sent
   * at once as `auth.refresh` when connected.
   */
  setToken(token) {
    this._token = token;
    if (this._isOpen()) this._send('auth.refresh', { token });
    this._scheduleRefresh();
  }

  _isOpen() {
    return this._ws !== null && this._ws.readyState === 1;
  }

  _open() {
    const url = new URL(this._urls[this._urlIndex % this._urls.length]);
    let ws;
    this._setConnection(this._attempt === 0 ? 'connecting' : 'reconnecting', { url: url.toString(), attempt: this._attempt });
    try {
      if (this._opts.tokenTransport === 'query') {
        url.searchParams.set('token', this._token);
        ws = new this._WebSocket(url.toString());
      } else {
        ws = new this._WebSocket(url.toString(), ['goring', `goring.bearer.${this._token}`]);
      }
    } catch (err) {
      this._emit('onError', 'connection', `cannot open ${url.origin}: ${err.message}`);
      this._scheduleReconnect(1006, '');
      return;
    }
    this._ws = ws;
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (event) => this._onFrame(event.data);
    ws.onclose = (event) => this._onClose(ws, event.code, event.reason);
    ws.onerror = () => {}; // onclose follows and says everything that is known
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  _onOpen(ws) {
    if (ws !== this._ws) return;
    this._openedAt = Date.now();
    // The backoff starts over only once this connection has stayed up: a
    // server that upgrades and then closes at once (1011 while its Redis is
    // down) must see ever longer waits, not a retry every half second.
    clearTimeout(this._stableTimer);
    this._stableTimer = setTimeout(() => {
      this._stableTimer = null;
      if (this._ws === ws) this._attempt = 0;
    }, this._opts.stableAfterMs ?? 10_000);
    if (this._cancelWhenRinging) {
      // The cancelled call comes back as call.resumed (then it is ended) or
      // not at all.
      clearTimeout(this._cancelTimer);
      this._cancelTimer = setTimeout(() => {
        this._cancelTimer = null;
        this._cancelWhenRinging = false;
      }, this._opts.resumeTimeoutMs ?? 5000);
    }
    this._setConnection('open', { url: this._urls[this._urlIndex % this._urls.length] });
    this._scheduleRefresh();
    if (this._call) {
      // The call lives on in the server for RECONNECT_GRACE: call.resumed
      // says so. Without it, the call ended while we were away.
      clearTimeout(this._resumeTimer);
      const sessionId = this._call.sessionId;
      this._resumeTimer = setTimeout(() => {
        if (this._call && this._call.sessionId === sessionId) this._endLocally('not_resumed');
      }, this._opts.resumeTimeoutMs ?? 5000);
    }
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    this._detach(ws);
    this._ws = null;
    clearTimeout(this._refreshTimer);
    clearTimeout(this._stableTimer);
    this._stableTimer = null;
    const opened = this._openedAt !== undefined && this._openedAt !== null;
    this._openedAt = null;
    if (!this._wanted) return;
    // A refused upgrade (401) looks like 1006 before open: the token's exp
    // is the one thing the client can check itself.
    const exp = tokenExpiry(this._token);
    const expired = code === 4001 || (!opened && exp !== null && exp * 1000 <= Date.now());
    if (expired) {
      this._endLocally('token_expired');
      this._emit('onTokenExpired');
      if (this._opts.refreshToken) {
        this._refreshThen(() => this._scheduleReconnect(code, reason), { expired: true });
      } else {
        this._wanted = false;
        this._setConnection('closed', { code: 4001, reason: reason || 'token expired' });
      }
      return;
    }
    if (FINAL_CLOSE.has(code) || !this._reconnect) {
      this._wanted = false;
      this._endLocally(code === 4000 ? 'replaced' : 'disconnected');
      this._setConnection('closed', { code, reason });
      return;
    }
    if (this._call && CALL_ENDED_CLOSE.has(code)) {
      // The server ended the call with this close: no call.resumed comes.
      this._endLocally('disconnected');
    } else if (this._call && (this._call.state === 'outgoing' || !this._call.sessionId)) {
      // call.start's answer was lost with the connection. If the server got
      // it, the call comes back as call.resumed: it is ended then, not
      // taken up again.
      this._setCancelWhenRinging();
      this._endLocally('disconnected');
    }
    this._scheduleReconnect(code, reason);
  }

  _scheduleReconnect(code, reason) {
    if (!this._wanted) return;
    // Drains, failed attempts and a server that cannot take us (1011: its
    // Redis is down) move on to the next server.
    if (code === 1012 || code === 1006 || code === 1001 || code === 1011) this._urlIndex += 1;
    const r = this._reconnect;
    let delay;
    if (code === 1012 && this._attempt === 0) {
      delay = Math.random() * 250; // the server asked us to go elsewhere now
    } else {
      const base = Math.min(r.maxDelayMs, r.initialDelayMs * r.factor ** this._attempt);
      delay = base / 2 + (Math.random() * base) / 2;
      if (SLOW_DOWN_CLOSE.has(code)) delay = Math.max(delay, 5000);
    }
    this._attempt += 1;
    this._setConnection('reconnecting', { code, reason, delayMs: Math.round(delay), attempt: this._attempt });
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (this._wanted && !this._ws) this._open();
    }, delay);
  }

  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    const claims = tokenClaims(this._token);
    const exp = claims && typeof claims.exp === 'number' ? claims.exp * 1000 : null;
    if (!this._opts.refreshToken || exp === null || !this._isOpen()) return;
    const now = Date.now();
    // A token is refreshed `ahead` before exp, but no sooner than halfway
    // through its lifetime (exp - iat): a token shorter-lived than `ahead`
    // would otherwise be refreshed at once, and again, every second.
    const iat = typeof claims.iat === 'number' ? claims.iat * 1000 : now;
    const ahead = Math.min((this._opts.refreshAheadSeconds ?? 60) * 1000, Math.max(0, exp - iat) / 2);
    const inMs = Math.max(this._refreshFloorMs, exp - now - ahead);
    this._refreshTimer = setTimeout(() => {
      this._refreshTimer = null;
      this._refreshThen(() => {});
    }, Math.min(inMs, 2 ** 31 - 1));
  }

  /**
   * Asks refreshToken for a new token and takes it, then runs `next`.
   * `expired`: the server closed with 4001, so a failure stops the client;
   * otherwise (the refresh ahead of exp) a failure only schedules another
   * try, and none once the connection is no longer open: its close has been
   * (or is about to be) handled on its own, a 4001 by a refresh of its own.
   */
  async _refreshThen(next, { expired = false } = {}) {
    const before = tokenExpiry(this._token);
    try {
      const token = await this._opts.refreshToken();
      if (!token) throw new Error('refreshToken gave no token');
      const after = tokenExpiry(token);
      if (after !== null && after * 1000 <= Date.now()) throw new Error('refreshToken gave an expired token');
      // A token service that hands back a token expiring no later (a cached
      // one) is asked again ever more slowly; one that moves exp on, as usual.
      const movedOn = before === null || after === null || after > before;
      this._refreshFloorMs = movedOn ? 1000 : Math.min(this._refreshFloorMs * 2, MAX_REFRESH_BACKOFF_MS);
      this.setToken(token);
      next();
    } catch (err) {
      this._emit('onError', 'token', `could not refresh the token: ${err.message}`);
      if (expired) {
        this._wanted = false;
        this._setConnection('closed', { code: 4001, reason: 'token expired' });
      } else if (this._isOpen()) {
        // Try again later; if exp passes first, the server closes with 4001
        // and the refresh is tried once more before reconnecting.
        this._refreshFloorMs = Math.min(this._refreshFloorMs * 2, MAX_REFRESH_BACKOFF_MS);
        this._scheduleRefresh();
      }
    }
  }

  _send(type, payload) {
    if (!this._isOpen()) return false;
    this._ws.send(JSON.stringify({ type, payload }));
    return true;
  }

  _onFrame(data) {
    let msg;
    try {
      msg = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      this._emit('onError', 'invalid_message', 'the server sent a frame that is not JSON');
      return;
    }
    const p = msg && typeof msg.payload === 'object' && msg.payload !== null ? msg.payload : {};
    switch (msg.type) {
      case 'ice.servers':
        this._onIceServers(p);
        break;
      case 'call.ringing':
        this._onRinging(p);
        break;
      case 'call.ring':
        this._onRing(p);
        break;
      case 'call.accepted':
        this._onAccepted(p);
        break;
      case 'call.rejected':
        if (this._isCurrent(p.session_id)) {
          this._emit('onCallRejected', p.session_id, p.callee_info ?? null);
          this._endLocally('rejected', p.callee_info);
        }
        break;
      case 'call.ended':
        if (this._isCurrent(p.session_id)) this._endLocally(p.reason || 'ended_by_user', p.peer_info);
        break;
      case 'call.resumed':
        this._onResumed(p);
        break;
      case 'webrtc.offer':
        if (this._isCurrent(p.session_id)) this._queue((call) => this._onOffer(call, p.sdp));
        break;
      case 'webrtc.answer':
        if (this._isCurrent(p.session_id)) this._queue((call) => this._onAnswer(call, p.sdp));
        break;
      case 'webrtc.ice':
        if (this._isCurrent(p.session_id)) this._queue((call) => this._onRemoteIce(call, p));
        break;
      case 'auth.refreshed':
        this._emit('onTokenRefreshed', p.expires_at ?? null);
        break;
      case 'error':
        this._onServerError(p.code, p.message);
        break;
      default:
        break; // newer servers may say more; ignore what we do not know
    }
  }

  _onIceServers(p) {
    if (!Array.isArray(p.ice_servers)) return;
    this._iceServers = p.ice_servers;
    if (this._pc && typeof this._pc.setConfiguration === 'function') {
      try {
        // Fresh TURN credentials for ICE restarts of the call in progress.
        this._pc.setConfiguration({ ...this._pc.getConfiguration(), iceServers: this._iceServers });
      } catch {
        // some implementations refuse changes; the next call gets them
      }
    }
    this._emit('onIceServers', this._iceServers.slice(), p);
  }

  _onServerError(code, message) {
    // Errors carry no request id; one that comes while call.start waits for
    // its answer is that answer (a stale webrtc frame never says
    // session_not_found to a caller that has no session yet).
    if (this._call && this._call.state === 'outgoing' && code !== 'session_not_found') {
      this._emit('onError', code, message);
      this._endLocally(code);
      return;
    }
    if (this._cancelWhenRinging && !this._call) {
      this._clearCancel(); // the cancelled call.start was refused
      return;
    }
    // A hang-up crossing the peer's (or a ring timeout) is refused as
    // invalid_state or session_not_found: the call is over either way.
    if ((code === 'invalid_state' || code === 'session_not_found') && Date.now() < this._quietUntil) return;
    this._emit('onError', code, message);
  }

  // ---- calls -----------------------------------------------------------

  /** Calls `calleeId`. The microphone is opened while it rings. */
  startCall(calleeId) {
    if (this._call) {
      this._emit('onError', 'invalid_state', 'already in a call');
      return false;
    }
    if (this._cancelWhenRinging) {
      // Its session id is not known yet, so the server still counts it.
      this._emit('onError', 'invalid_state', 'the previous call is still being cancelled; try again in a moment');
      return false;
    }
    if (!this._isOpen()) {
      this._emit('onError', 'not_connected', 'not connected to the server; try again once the connection is back');
      return false;
    }
    this._call = { sessionId: null, peerId: String(calleeId), peerInfo: { user_id: String(calleeId) }, role: 'caller', state: 'outgoing' };
    this._acquireMedia();
    this._send('call.start', { callee_id: String(calleeId) });
    this._emitState();
    return true;
  }

  /**
   * Accepts the ringing call (the current one when sessionId is left out).
   * Needs the connection: while it is down the call keeps ringing here, and
   * this returns false and reports `not_connected`.
   */
  acceptCall(sessionId = this._call?.sessionId) {
    if (!this._call || this._call.state !== 'incoming' || this._call.sessionId !== sessionId) {
      this._emit('onError', 'invalid_state', 'no such incoming call');
      return false;
    }
    if (!this._send('call.accept', { session_id: sessionId })) {
      this._emit('onError', 'not_connected', 'not connected to the server; accept again once the connection is back');
      return false;
    }
    this._setAccepted(this._call);
    this._acquireMedia();
    this._emitState();
    return true;
  }

  /**
   * Rejects the ringing call (the current one when sessionId is left out).
   * While the connection is down the call ends here at once and the
   * rejection is sent when the server hands the call back.
   */
  rejectCall(sessionId = this._call?.sessionId) {
    if (!sessionId) return false;
    if (!this._send('call.reject', { session_id: sessionId })) this._sendOnResume = { sessionId, type: 'call.reject' };
    if (this._isCurrent(sessionId)) this._endLocally('declined');
    return true;
  }

  /** Hangs up (or cancels a call that still rings). */
  endCall() {
    return this._hangUp('hangup');
  }

  _hangUp(reason) {
    if (!this._call) return false;
    const { sessionId } = this._call;
    if (!sessionId) this._setCancelWhenRinging();
    else if (!this._send('call.end', { session_id: sessionId })) this._sendOnResume = { sessionId, type: 'call.end' };
    this._endLocally(reason);
    return true;
  }

  /** Cancels the call.start whose session id has not come yet, when it comes. */
  _setCancelWhenRinging() {
    this._clearCancel();
    this._cancelWhenRinging = true;
  }

  _clearCancel() {
    clearTimeout(this._cancelTimer);
    this._cancelTimer = null;
    this._cancelWhenRinging = false;
  }

  /** The call is accepted: media should connect within mediaTimeoutMs. */
  _setAccepted(call) {
    call.state = 'accepted';
    this._mediaRestarts = 0;
    this._watchMedia(call);
  }

  _watchMedia(call) {
    clearTimeout(this._mediaTimer);
    this._mediaTimer = setTimeout(() => {
      this._mediaTimer = null;
      if (this._call !== call || call.state === 'connected') return;
      if (this._mediaRestarts === 0) {
        // Something was lost (an offer, an answer, candidates) or ICE is
        // stuck: the caller starts ICE over (the callee waits for its offer).
        this._mediaRestarts += 1;
        if (call.role === 'caller') this._queue(() => this._offer(call, true));
        this._watchMedia(call);
        return;
      }
      this._hangUp('media_timeout');
    }, this._opts.mediaTimeoutMs ?? 30_000);
  }

  _isCurrent(sessionId) {
    return this._call !== null && sessionId !== undefined && this._call.sessionId === sessionId;
  }

  _onRinging(p) {
    if (this._cancelWhenRinging && !this._call) {
      this._clearCancel();
      this._send('call.end', { session_id: p.session_id });
      return;
    }
    if (!this._call || this._call.role !== 'caller' || this._call.sessionId) return;
    this._call.sessionId = p.session_id;
    this._call.state = 'ringing';
    // The callee's phone is being woken (an offline ring): it rings once
    // their app connects; the caller may cancel meanwhile as usual.
    if (p.callee_offline === true) this._call.calleeOffline = true;
    this._emit('onRinging', p.session_id, p.callee_id, { calleeOffline: p.callee_offline === true });
    this._emitState();
  }

  _onRing(p) {
    if (this._call) {
      // The server rings only free users; if we think otherwise, say no.
      this._send('call.reject', { session_id: p.session_id });
      return;
    }
    const info = p.caller_info ?? { user_id: p.caller_id };
    this._call = { sessionId: p.session_id, peerId: p.caller_id, peerInfo: info, role: 'callee', state: 'incoming' };
    this._emitState();
    this._emit('onIncomingCall', p.caller_id, p.session_id, info);
  }

  _onAccepted(p) {
    if (!this._isCurrent(p.session_id) || this._call.role !== 'caller') return;
    const call = this._call;
    this._setAccepted(call);
    if (p.callee_info) call.peerInfo = p.callee_info;
    this._emit('onCallAccepted', p.session_id, p.callee_info ?? null);
    this._emitState();
    this._queue(() => this._offer(call, false));
  }

  _onResumed(p) {
    clearTimeout(this._resumeTimer);
    if (this._sendOnResume && this._sendOnResume.sessionId === p.session_id) {
      // Ended here while the connection was down: say so now.
      const { type } = this._sendOnResume;
      this._sendOnResume = null;
      this._send(type, { session_id: p.session_id });
      return;
    }
    if (this._cancelWhenRinging && !this._call && p.role === 'caller') {
      this._clearCancel();
      this._send('call.end', { session_id: p.session_id });
      return;
    }
    const accepted = p.state === 'accepted';
    const adopted = !this._isCurrent(p.session_id);
    if (adopted) {
      // A call of this user that this client did not know: it was taken
      // over from another tab or device, or this client lost track of it
      // in a drop. Take it up.
      if (this._call) this._endLocally('replaced');
      const state = p.role === 'caller' ? 'ringing' : 'incoming';
      this._call = { sessionId: p.session_id, peerId: p.peer_id, peerInfo: { user_id: p.peer_id }, role: p.role, state };
      if (accepted) this._setAccepted(this._call);
    } else if (accepted && this._call.state !== 'connected' && this._call.state !== 'accepted') {
      this._setAccepted(this._call);
    }
    const call = this._call;
    this._emit('onResumed', this.call);
    this._emitState();
    if (!accepted) {
      if (adopted && call.state === 'incoming') this._emit('onIncomingCall', p.peer_id, p.session_id, call.peerInfo);
      return;
    }
    this._acquireMedia();
    const pc = this._pc;
    if (!pc) {
      // The other side still has its old peer connection: offer a new one.
      this._queue(() => this._offer(call, false));
    } else if (!['connected', 'completed'].includes(pc.iceConnectionState)) {
      if (call.role === 'callee' && this._answerUnsent) {
        // The answer was made while the connection was down: the caller
        // still waits for it (with its candidates gathered so far).
        this._queue(() => this._resendAnswer(call));
      } else {
        // An offer made while we were away (never sent) or candidates sent
        // meanwhile are lost: offer again, restarting ICE (if both offer at
        // once, the callee gives way).
        this._queue(() => this._offer(call, true));
      }
    }
  }

  /** Ends the call here, without telling the server. */
  _endLocally(reason, peerInfo) {
    clearTimeout(this._resumeTimer);
    clearTimeout(this._mediaTimer);
    this._mediaTimer = null;
    if (!this._call) return;
    this._quietUntil = Date.now() + 3000;
    const call = { ...this._call, state: 'ended', reason };
    if (peerInfo) call.peerInfo = peerInfo;
    this._call = null;
    this._closeMedia();
    this._emit('onStateChange', 'ended', call);
    this._emit('onCallEnded', reason, call);
    this._emit('onStateChange', 'idle', null);
  }

  // ---- media -----------------------------------------------------------

  _acquireMedia() {
    if (this._mediaPromise) return this._mediaPromise;
    const call = this._call;
    if (!call) return Promise.resolve(null); // no microphone without a call
    this._mediaPromise = Promise.resolve()
      .then(() => this._getUserMedia())
      .then((stream) => {
        if (this._call !== call) {
          for (const t of stream.getTracks()) t.stop();
          return null;
        }
        this._localStream = stream;
        return stream;
      })
      .catch((err) => {
        if (this._call === call) {
          this._emit('onError', 'media', `no microphone: ${err.message ?? err}`);
          this._hangUp('media_failed');
        }
        return null;
      });
    return this._mediaPromise;
  }

  /**
   * Runs peer connection steps one after another, in arrival order. A step
   * belongs to the call that was current when it was queued: it is given
   * that call, and after each of its awaits bails out if that call is no
   * longer the current one (it ended, and maybe another began meanwhile).
   */
  _queue(step) {
    const call = this._call;
    this._pcQueue = this._pcQueue
      .then(() => (this._call === call && call !== null ? step(call) : undefined))
      .catch((err) => {
        if (this._call === call) this._emit('onError', 'webrtc', err.message ?? String(err));
      });
  }

  async _newPeerConnection(call) {
    if (this._call !== call) return null;
    const stream = await this._acquireMedia();
    if (this._call !== call) return null; // a step left over from an ended call
    const config = { iceServers: this._iceServers };
    if (this._opts.iceTransportPolicy) config.iceTransportPolicy = this._opts.iceTransportPolicy;
    const pc = new this._RTCPeerConnection(config);
    this._pc = pc;
    this._pendingIce = [];
    this._answerUnsent = false;
    pc.onicecandidate = (event) => {
      const c = event.candidate;
      if (!c || !c.candidate || this._call !== call) return; // end of candidates
      this._send('webrtc.ice', {
        session_id: call.sessionId,
        candidate: c.candidate,
        sdpMid: c.sdpMid ?? null,
        sdpMLineIndex: c.sdpMLineIndex ?? null,
      });
    };
    pc.ontrack = (event) => {
      if (this._pc !== pc) return;
      const remote = event.streams && event.streams[0];
      this._remoteStream = remote ?? new globalThis.MediaStream([event.track]);
      this._emit('onRemoteStream', this._remoteStream);
    };
    const onState = () => {
      if (this._pc !== pc || this._call !== call) return;
      const state = pc.connectionState ?? pc.iceConnectionState;
      const up = state === 'connected' || state === 'completed';
      if (up && call.state !== 'connected') {
        call.state = 'connected';
        clearTimeout(this._mediaTimer);
        this._mediaTimer = null;
        this._emitState();
      } else if ((state === 'failed' || state === 'disconnected') && call.state === 'connected') {
        this._setAccepted(call);
        this._emitState();
        if (state === 'failed' && call.role === 'caller') this._queue(() => this._offer(call, true));
      }
    };
    pc.onconnectionstatechange = onState;
    pc.oniceconnectionstatechange = onState;
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    else pc.addTransceiver?.('audio', { direction: 'recvonly' });
    return pc;
  }

  async _offer(call, iceRestart) {
    const pc = this._pc ?? (await this._newPeerConnection(call));
    if (!pc || this._call !== call) return;
    if (pc.signalingState === 'have-local-offer') {
      // An offer the peer never got (made while the connection was down, or
      // lost with the peer's connection): start over with a new one.
      await pc.setLocalDescription({ type: 'rollback' });
      if (this._call !== call) return;
    }
    if (pc.signalingState !== 'stable') return;
    const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
    if (this._call !== call) return;
    await pc.setLocalDescription(offer);
    if (this._call !== call) return;
    // Not sent while the connection is down: the resume offers again.
    this._send('webrtc.offer', { session_id: call.sessionId, sdp: pc.localDescription.sdp });
  }

  async _onOffer(call, sdp) {
    let pc = this._pc;
    if (pc && pc.signalingState === 'have-local-offer') {
      // Both offered at once: the callee gives way; the caller keeps its
      // own and sends it again, as the callee offers after a drop (our
      // offer may have been lost with its connection). An offer from a new
      // peer connection of the callee (another device took the call over)
      // replaces ours: rolled back, and answered below with a new one.
      const samePeer = !pc.remoteDescription || fingerprint(pc.remoteDescription.sdp) === fingerprint(sdp);
      if (call.role === 'caller' && samePeer) {
        this._send('webrtc.offer', { session_id: call.sessionId, sdp: pc.localDescription.sdp });
        return;
      }
      await pc.setLocalDescription({ type: 'rollback' });
      if (this._call !== call) return;
    }
    if (pc && pc.remoteDescription && fingerprint(pc.remoteDescription.sdp) !== fingerprint(sdp)) {
      // The peer started over with a new peer connection (a takeover from
      // another tab or device, or it lost track of the call in a drop).
      this._closePeerConnection();
      pc = null;
    }
    pc = pc ?? (await this._newPeerConnection(call));
    if (!pc || this._call !== call) return;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    if (this._call !== call) return;
    await this._flushIce(pc);
    const answer = await pc.createAnswer();
    if (this._call !== call) return;
    await pc.setLocalDescription(answer);
    if (this._call !== call) return;
    // Made while the connection is down: sent again on call.resumed.
    this._answerUnsent = !this._send('webrtc.answer', { session_id: call.sessionId, sdp: pc.localDescription.sdp });
  }

  async _resendAnswer(call) {
    const pc = this._pc;
    if (!pc || this._call !== call || !this._answerUnsent) return;
    if (pc.signalingState !== 'stable' || pc.localDescription?.type !== 'answer') return;
    this._answerUnsent = !this._send('webrtc.answer', { session_id: call.sessionId, sdp: pc.localDescription.sdp });
  }

  async _onAnswer(call, sdp) {
    const pc = this._pc;
    if (!pc || this._call !== call || pc.signalingState !== 'have-local-offer') return;
    await pc.setRemoteDescription({ type: 'answer', sdp });
    if (this._call !== call) return;
    await this._flushIce(pc);
  }

  async _onRemoteIce(call, p) {
    if (typeof p.candidate !== 'string' || p.candidate === '') return;
    const init = { candidate: p.candidate, sdpMid: p.sdpMid ?? null, sdpMLineIndex: p.sdpMLineIndex ?? null };
    // Chrome needs one of the two; m-line 0 is the audio of a 1:1 call.
    if (init.sdpMid === null && init.sdpMLineIndex === null) init.sdpMLineIndex = 0;
    const pc = this._pc;
    if (this._call !== call) return;
    if (!pc || !pc.remoteDescription) {
      this._pendingIce.push(init);
      return;
    }
    await pc.addIceCandidate(init);
  }

  async _flushIce(pc) {
    const pending = this._pendingIce;
    this._pendingIce = [];
    for (const init of pending) {
      try {
        await pc.addIceCandidate(init);
      } catch {
        // a candidate of an older peer connection; ICE gets by without it
      }
    }
  }

  _closePeerConnection() {
    const pc = this._pc;
    this._pc = null;
    this._pendingIce = [];
    if (pc) {
      pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
      try {
        pc.close();
      } catch {
        // already closed
      }
    }
  }

  _closeMedia() {
    this._closePeerConnection();
    if (this._localStream) for (const t of this._localStream.getTracks()) t.stop();
    this._localStream = null;
    this._mediaPromise = null;
    this._remoteStream = null;
    this._pcQueue = Promise.resolve();
  }

  // ---- callbacks -------------------------------------------------------

  _setConnection(state, detail) {
    if (state === this._connectionState && state !== 'reconnecting') return;
    this._connectionState = state;
    this._emit('onConnectionChange', state, detail ?? {});
  }

  _emitState() {
    this._emit('onStateChange', this.callState, this.call);
  }

  _emit(name, ...args) {
    const fn = this[name];
    if (typeof fn !== 'function') return;
    try {
      fn.apply(this, args);
    } catch (err) {
      // An application callback's bug must not break the client.
      globalThis.console?.error?.(`SignalingClient ${name} threw`, err);
    }
  }
}
