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
 * - `resumeTimeoutMs`: how long after reconnecting during a call to wait
 *   for `call.resumed` before the call counts as over (default 5000).
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
 * - `onRinging(sessionId, calleeId)`
 * - `onCallAccepted(sessionId, calleeInfo)`
 * - `onCallRejected(sessionId, calleeInfo)`
 * - `onCallEnded(reason, call)`: a server reason (`cancelled`,
 *   `ended_by_user`, `no_answer`, `peer_disconnected`, `session_lost`), an
 *   error code when `call.start` was refused (`user_busy`, `user_offline`,
 *   ...), or a local one: `hangup` (you ended it), `declined` (you rejected
 *   it), `rejected` (the callee did), `media_failed`, `not_resumed` (it
 *   ended while you were away), `replaced`, `token_expired`, `disconnected`.
 * - `onRemoteStream(stream)`
 * - `onResumed(call)`: the server handed the call back after a reconnect.
 * - `onError(code, message)`: server `error` frames, plus local codes
 *   `media` (no microphone), `webrtc` and `token`.
 * - `onTokenExpired()`: the token ran out (close 4001 or refused upgrade).
 * - `onTokenRefreshed(expiresAt)`: the server took the new token.
 * - `onIceServers(iceServers, payload)`: a new list came (`ice.servers`).
 *
 * Methods: `connect()`; `disconnect()` (for good; a call ends at once);
 * `startCall(calleeId)`; `acceptCall(sessionId?)`; `rejectCall(sessionId?)`;
 * `endCall()` (hangs up, or cancels a call still ringing; sent once the
 * call is back if the connection is down); `setToken(jwt)` (next
 * connections, and `auth.refresh` now when connected). Call methods return
 * false (and report `onError`) when they do not apply.
 *
 * Read-only properties: `connectionState`, `callState`, `call` (a copy:
 * `{ sessionId, peerId, peerInfo, role, state }` or null), `peerConnection`,
 * `localStream`, `remoteStream`, `iceServers`.
 */

const DEFAULT_RECONNECT = { initialDelayMs: 500, maxDelayMs: 15_000, factor: 2 };
/** Close codes after which reconnecting is pointless or unwanted. */
const FINAL_CLOSE = new Set([4000, 4002]);
/** Close codes that mean "you send too much or read too little": wait longer. */
const SLOW_DOWN_CLOSE = new Set([1008, 1009, 1013]);

/** The `exp` claim of a JWT (unix seconds), or null. Not a verification. */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(decodeBase64(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    return typeof json.exp === 'number' ? json.exp : null;
  } catch {
    return null;
  }
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
    this._attempt = 0;
    this._reconnectTimer = null;
    this._refreshTimer = null;
    this._resumeTimer = null;

    this._call = null; // { sessionId, peerId, peerInfo, role, state }
    this._pc = null;
    this._localStream = null;
    this._mediaPromise = null;
    this._remoteStream = null;
    this._pendingIce = [];
    this._pcQueue = Promise.resolve();
    this._cancelWhenRinging = false;
    this._endOnResume = null; // session id to end once the server hands it back
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
    this._attempt = 0;
    if (this._cancelWhenRinging) {
      // The cancelled call comes back as call.resumed (then it is ended) or
      // not at all.
      setTimeout(() => (this._cancelWhenRinging = false), this._opts.resumeTimeoutMs ?? 5000);
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
        this._refreshThen(() => this._scheduleReconnect(code, reason));
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
    if (this._call && (this._call.state === 'outgoing' || !this._call.sessionId)) {
      // call.start's answer was lost with the connection.
      this._endLocally('disconnected');
    }
    this._scheduleReconnect(code, reason);
  }

  _scheduleReconnect(code, reason) {
    if (!this._wanted) return;
    // Drains and failed attempts move on to the next server.
    if (code === 1012 || code === 1006 || code === 1001) this._urlIndex += 1;
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
    const exp = tokenExpiry(this._token);
    if (!this._opts.refreshToken || exp === null || !this._isOpen()) return;
    const ahead = (this._opts.refreshAheadSeconds ?? 60) * 1000;
    const inMs = Math.max(1000, exp * 1000 - Date.now() - ahead);
    this._refreshTimer = setTimeout(() => this._refreshThen(() => {}), Math.min(inMs, 2 ** 31 - 1));
  }

  async _refreshThen(next) {
    try {
      const token = await this._opts.refreshToken();
      if (!token) throw new Error('refreshToken gave no token');
      this.setToken(token);
      next();
    } catch (err) {
      this._emit('onError', 'token', `could not refresh the token: ${err.message}`);
      if (!this._isOpen()) {
        this._wanted = false;
        this._setConnection('closed', { code: 4001, reason: 'token expired' });
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
        if (this._isCurrent(p.session_id)) this._queue(() => this._onOffer(p.sdp));
        break;
      case 'webrtc.answer':
        if (this._isCurrent(p.session_id)) this._queue(() => this._onAnswer(p.sdp));
        break;
      case 'webrtc.ice':
        if (this._isCurrent(p.session_id)) this._queue(() => this._onRemoteIce(p));
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
      this._cancelWhenRinging = false; // the cancelled call.start was refused
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
      this._emit('onError', 'connection', 'not connected');
      return false;
    }
    this._call = { sessionId: null, peerId: String(calleeId), peerInfo: { user_id: String(calleeId) }, role: 'caller', state: 'outgoing' };
    this._acquireMedia();
    this._send('call.start', { callee_id: String(calleeId) });
    this._emitState();
    return true;
  }

  /** Accepts the ringing call (the current one when sessionId is left out). */
  acceptCall(sessionId = this._call?.sessionId) {
    if (!this._call || this._call.state !== 'incoming' || this._call.sessionId !== sessionId) {
      this._emit('onError', 'invalid_state', 'no such incoming call');
      return false;
    }
    this._send('call.accept', { session_id: sessionId });
    this._call.state = 'accepted';
    this._acquireMedia();
    this._emitState();
    return true;
  }

  /** Rejects the ringing call (the current one when sessionId is left out). */
  rejectCall(sessionId = this._call?.sessionId) {
    if (!sessionId) return false;
    this._send('call.reject', { session_id: sessionId });
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
    if (!sessionId) this._cancelWhenRinging = true;
    else if (!this._send('call.end', { session_id: sessionId })) this._endOnResume = sessionId;
    this._endLocally(reason);
    return true;
  }

  _isCurrent(sessionId) {
    return this._call !== null && sessionId !== undefined && this._call.sessionId === sessionId;
  }

  _onRinging(p) {
    if (this._cancelWhenRinging && !this._call) {
      this._cancelWhenRinging = false;
      this._send('call.end', { session_id: p.session_id });
      return;
    }
    if (!this._call || this._call.role !== 'caller' || this._call.sessionId) return;
    this._call.sessionId = p.session_id;
    this._call.state = 'ringing';
    this._emit('onRinging', p.session_id, p.callee_id);
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
    this._call.state = 'accepted';
    if (p.callee_info) this._call.peerInfo = p.callee_info;
    this._emit('onCallAccepted', p.session_id, p.callee_info ?? null);
    this._emitState();
    this._queue(() => this._offer(false));
  }

  _onResumed(p) {
    clearTimeout(this._resumeTimer);
    if (this._endOnResume === p.session_id) {
      this._endOnResume = null;
      this._send('call.end', { session_id: p.session_id });
      return;
    }
    if (this._cancelWhenRinging && !this._call && p.role === 'caller') {
      this._cancelWhenRinging = false;
      this._send('call.end', { session_id: p.session_id });
      return;
    }
    const accepted = p.state === 'accepted';
    const adopted = !this._isCurrent(p.session_id);
    if (adopted) {
      // A call of this user that this client did not know (a new page or a
      // takeover): take it up.
      if (this._call) this._endLocally('replaced');
      const state = accepted ? 'accepted' : p.role === 'caller' ? 'ringing' : 'incoming';
      this._call = { sessionId: p.session_id, peerId: p.peer_id, peerInfo: { user_id: p.peer_id }, role: p.role, state };
    } else if (accepted && this._call.state !== 'connected') {
      this._call.state = 'accepted';
    }
    this._emit('onResumed', this.call);
    this._emitState();
    if (!accepted) {
      if (adopted && this._call.state === 'incoming') this._emit('onIncomingCall', p.peer_id, p.session_id, this._call.peerInfo);
      return;
    }
    this._acquireMedia();
    const pc = this._pc;
    if (!pc) {
      // The other side still has its old peer connection: offer a new one.
      this._queue(() => this._offer(false));
    } else if (!['connected', 'completed'].includes(pc.iceConnectionState)) {
      // Candidates sent while we were away are lost: restart ICE (if both
      // offer at once, the callee gives way).
      this._queue(() => this._offer(true));
    }
  }

  /** Ends the call here, without telling the server. */
  _endLocally(reason, peerInfo) {
    clearTimeout(this._resumeTimer);
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

  /** Runs peer connection steps one after another, in arrival order. */
  _queue(step) {
    const call = this._call;
    this._pcQueue = this._pcQueue
      .then(() => (this._call === call && call !== null ? step() : undefined))
      .catch((err) => {
        if (this._call === call) this._emit('onError', 'webrtc', err.message ?? String(err));
      });
  }

  async _newPeerConnection() {
    const stream = await this._acquireMedia();
    if (!this._call) return null;
    const config = { iceServers: this._iceServers };
    if (this._opts.iceTransportPolicy) config.iceTransportPolicy = this._opts.iceTransportPolicy;
    const pc = new this._RTCPeerConnection(config);
    const call = this._call;
    this._pc = pc;
    this._pendingIce = [];
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
        this._emitState();
      } else if ((state === 'failed' || state === 'disconnected') && call.state === 'connected') {
        call.state = 'accepted';
        this._emitState();
        if (state === 'failed' && call.role === 'caller') this._queue(() => this._offer(true));
      }
    };
    pc.onconnectionstatechange = onState;
    pc.oniceconnectionstatechange = onState;
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    else pc.addTransceiver?.('audio', { direction: 'recvonly' });
    return pc;
  }

  async _offer(iceRestart) {
    const pc = this._pc ?? (await this._newPeerConnection());
    if (!pc || pc.signalingState !== 'stable') return;
    const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
    await pc.setLocalDescription(offer);
    this._send('webrtc.offer', { session_id: this._call.sessionId, sdp: pc.localDescription.sdp });
  }

  async _onOffer(sdp) {
    let pc = this._pc;
    if (pc && pc.signalingState === 'have-local-offer') {
      // Both offered at once: the callee gives way, the caller keeps its own.
      if (this._call.role === 'caller') return;
      await pc.setLocalDescription({ type: 'rollback' });
    }
    if (pc && pc.remoteDescription && fingerprint(pc.remoteDescription.sdp) !== fingerprint(sdp)) {
      // The peer started over with a new peer connection (it reloaded).
      this._closePeerConnection();
      pc = null;
    }
    pc = pc ?? (await this._newPeerConnection());
    if (!pc) return;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await this._flushIce(pc);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this._send('webrtc.answer', { session_id: this._call.sessionId, sdp: pc.localDescription.sdp });
  }

  async _onAnswer(sdp) {
    const pc = this._pc;
    if (!pc || pc.signalingState !== 'have-local-offer') return;
    await pc.setRemoteDescription({ type: 'answer', sdp });
    await this._flushIce(pc);
  }

  async _onRemoteIce(p) {
    if (typeof p.candidate !== 'string' || p.candidate === '') return;
    const init = { candidate: p.candidate, sdpMid: p.sdpMid ?? null, sdpMLineIndex: p.sdpMLineIndex ?? null };
    // Chrome needs one of the two; m-line 0 is the audio of a 1:1 call.
    if (init.sdpMid === null && init.sdpMLineIndex === null) init.sdpMLineIndex = 0;
    const pc = this._pc;
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
