// The demo page: sign in, call a user id, answer, hang up, and see in plain
// words what happens. All signaling is in signaling-client.js; this file
// only draws it. Text from the network goes into the page as text only.
import { SignalingClient, tokenClaims, tokenExpiry } from './signaling-client.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const STORAGE_KEY = 'goring-demo-signin';

let client = null;
let signin = null; // { token, userId, name, dev }
let lastPeer = '';
let lastLogged = '';

// ---- plain words -------------------------------------------------------

function peerName(info, fallback) {
  if (info && (info.name || info.username)) return info.name || info.username;
  return (info && info.user_id) || fallback || 'The other person';
}

const ENDED = {
  cancelled: (p) => `${p} cancelled the call`,
  ended_by_user: (p) => `${p} hung up`,
  no_answer: (p) => `${p} did not answer`,
  peer_disconnected: (p) => `${p} lost the connection`,
  session_lost: () => 'The server lost track of the call',
  hangup: () => 'You hung up',
  declined: () => 'You declined the call',
  rejected: (p) => `${p} declined the call`,
  user_busy: (p) => `${p} is busy in another call`,
  user_offline: (p) => `${p} is not online`,
  invalid_message: () => 'That call could not be placed',
  invalid_state: () => 'You cannot place a call right now',
  unauthorized: () => 'You are not allowed to do that',
  internal_error: () => 'The server had a problem; please try again',
  rate_limited: () => 'Too many attempts; wait a moment and try again',
  media_failed: () => 'The call ended: your microphone could not be used',
  media_timeout: () => 'The call ended: the audio could not be connected',
  not_resumed: () => 'The call ended while you were reconnecting',
  replaced: () => 'The call moved to your other tab or device',
  token_expired: () => 'The call ended: your sign-in expired',
  disconnected: () => 'The call ended: you are disconnected',
};

function endedText(reason, call) {
  const p = peerName(call && call.peerInfo, call && call.peerId);
  const f = ENDED[reason];
  return f ? f(p) : `The call ended (${reason})`;
}

const ERRORS = {
  invalid_message: (m) => `The server did not understand a request: ${m}`,
  unauthorized: (m) => `Not allowed: ${m}`,
  user_busy: () => `${lastPeer || 'That person'} is busy in another call`,
  user_offline: () => `${lastPeer || 'That person'} is not online`,
  session_not_found: () => 'That call does not exist any more',
  invalid_state: (m) => `That is not possible right now: ${m}`,
  internal_error: () => 'The server had a problem; please try again',
  rate_limited: () => 'You are sending too fast; slow down',
  media: (m) => `Your microphone could not be used (${m}). Allow it in the browser and try again.`,
  webrtc: (m) => `The audio connection had a problem: ${m}`,
  token: (m) => `Your sign-in could not be renewed: ${m}`,
  connection: (m) => `Cannot reach the server: ${m}`,
  not_connected: () => 'Not connected to the server right now; try again once it says Connected',
};

function errorText(code, message) {
  const f = ERRORS[code];
  return f ? f(message || '') : `${message || 'Something went wrong'} (${code})`;
}

function closedText(code) {
  switch (code) {
    case 4000:
      return 'You signed in somewhere else (another tab or device), so this page is disconnected';
    case 4001:
      return 'Your sign-in expired; sign in again';
    case 4002:
      return 'An operator disconnected you';
    default:
      return 'Disconnected';
  }
}

function dropText(code) {
  switch (code) {
    case 1012:
      return 'The server is restarting';
    case 1013:
      return 'The connection was too slow';
    case 1008:
      return 'Too many messages were sent';
    case 1009:
      return 'A message was too big';
    case 1011:
      return 'The server could not take the connection';
    case 4001:
      return 'Your sign-in expired';
    default:
      return 'The connection was lost';
  }
}

// ---- drawing -----------------------------------------------------------

let lastLogText = '';

function log(text) {
  if (text === lastLogText) return; // an error that also ended the call
  lastLogText = text;
  const li = document.createElement('li');
  const time = new Date().toLocaleTimeString();
  li.textContent = `${time}  ${text}`;
  const list = $('log');
  list.prepend(li);
  while (list.children.length > 50) list.lastChild.remove();
}

function showMessage(text, code) {
  const el = $('message');
  el.textContent = text;
  el.dataset.code = code || '';
  el.hidden = !text;
  if (text) log(text);
}

function setConnection(state, text) {
  const el = $('connection-state');
  el.dataset.state = state;
  el.textContent = text;
}

function setCall(state, text) {
  const el = $('call-state');
  el.dataset.state = state;
  el.textContent = text;
}

function drawCall(state, call) {
  const inCall = state !== 'idle' && state !== 'ended';
  $('call-button').disabled = inCall;
  $('callee').disabled = inCall;
  $('hangup-button').hidden = !inCall || state === 'incoming';
  $('incoming').hidden = state !== 'incoming';
  if (state === 'idle' || state === 'ended') {
    lastLogged = '';
    return;
  }
  const p = peerName(call.peerInfo, call.peerId);
  lastPeer = p;
  const texts = {
    outgoing: `Calling ${p}…`,
    ringing: call.calleeOffline ? `Waking ${p}'s phone…` : `${p}'s phone is ringing…`,
    incoming: `${p} is calling you`,
    accepted: `Connecting the audio with ${p}…`,
    connected: `In a call with ${p}`,
  };
  setCall(state, texts[state] || state);
  if (state === 'incoming') $('incoming-caller').textContent = p;
  if (lastLogged !== texts[state]) log(texts[state] || state);
  lastLogged = texts[state];
}

// ---- sign in -----------------------------------------------------------

async function devToken(userId, name) {
  const res = await fetch('dev/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(name ? { user_id: userId, name } : { user_id: userId }),
  });
  if (res.status === 404) return null;
  let body = {};
  try {
    body = await res.json();
  } catch {
    // an error page
  }
  if (!res.ok || !body.token) throw new Error(body.message || body.error || `the server answered ${res.status}`);
  return body.token;
}

async function serverUrls() {
  // An operator may list instances in config.json next to this page.
  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    if (res.ok) {
      const config = await res.json();
      if (Array.isArray(config.servers) && config.servers.length > 0) return config.servers;
    }
  } catch {
    // no config: this server only
  }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return [`${scheme}//${location.host}/ws`];
}

function userIdOf(token) {
  const claims = tokenClaims(token) ?? {}; // UTF-8 names decoded as such
  return { id: String(claims.hash ?? ''), name: String(claims.name || claims.username || '') };
}

async function start(newSignin) {
  if (client) client.disconnect(); // never two clients
  client = null;
  signin = newSignin;
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(signin));
  const who = userIdOf(signin.token);
  $('me').textContent = who.name ? `${who.name} (${who.id})` : who.id || 'unknown';
  $('signin').hidden = true;
  $('phone').hidden = false;
  showMessage('');

  const options = {
    iceTransportPolicy: params.get('relay') === '1' ? 'relay' : undefined,
    refreshToken: signin.dev ? () => devToken(signin.userId, signin.name) : undefined,
    onConnectionChange(state, detail) {
      if (state === 'connecting') setConnection(state, 'Connecting…');
      else if (state === 'open') {
        setConnection(state, 'Connected');
        log('Connected to the server');
      } else if (state === 'reconnecting') {
        const why = detail.code ? `${dropText(detail.code)}. ` : '';
        const when = detail.delayMs !== undefined ? ` in ${Math.max(1, Math.round(detail.delayMs / 1000))} s` : '';
        setConnection(state, `${why}Reconnecting${when}…`);
        if (detail.code) log(`${dropText(detail.code)}; reconnecting`);
      } else if (state === 'closed') {
        setConnection(state, closedText(detail.code));
        if (detail.code !== 1000) showMessage(closedText(detail.code), `close_${detail.code}`);
      }
    },
    onStateChange: drawCall,
    onCallEnded(reason, call) {
      const text = endedText(reason, call);
      setCall('ended', text);
      $('call-state').dataset.reason = reason;
      log(text);
      const audio = $('remote-audio');
      audio.srcObject = null;
    },
    onRemoteStream(stream) {
      const audio = $('remote-audio');
      audio.srcObject = stream;
      audio.play().catch(() => showMessage('Click anywhere on the page to hear the other side', 'autoplay'));
    },
    onResumed(call) {
      log(`The call with ${peerName(call.peerInfo, call.peerId)} goes on`);
    },
    onError(code, message) {
      showMessage(errorText(code, message), code);
    },
    onTokenExpired() {
      log('Your sign-in expired');
    },
    onTokenRefreshed() {
      log('Sign-in renewed');
    },
  };
  client = new SignalingClient(await serverUrls(), signin.token, options);
  client.connect();
}

function signOut() {
  if (client) client.disconnect();
  client = null;
  signin = null;
  sessionStorage.removeItem(STORAGE_KEY);
  $('phone').hidden = true;
  $('signin').hidden = false;
  setConnection('idle', 'Not signed in');
  setCall('idle', 'No call');
}

function showTokenForm(text) {
  $('token-form').hidden = false;
  $('show-token-form').hidden = true;
  if (text) showMessage(text, 'no_dev_token');
}

// ---- wiring ------------------------------------------------------------

// One sign-in at a time: a second submit while the first waits for its
// token would start a second client.
let signingIn = false;

async function signingInWith(buttonId, work) {
  if (signingIn) return;
  signingIn = true;
  $(buttonId).disabled = true;
  try {
    await work();
  } finally {
    signingIn = false;
    $(buttonId).disabled = false;
  }
}

$('signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const userId = $('signin-user').value.trim();
  const name = $('signin-name').value.trim();
  if (!userId) return;
  signingInWith('signin-submit', async () => {
    try {
      const token = await devToken(userId, name);
      if (token === null) {
        showTokenForm('This server is not in development mode: it does not hand out tokens. Paste a token instead.');
        return;
      }
      await start({ token, userId, name, dev: true });
    } catch (err) {
      showMessage(`Could not sign in: ${err.message}`, 'signin');
    }
  });
});

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token-input').value.trim();
  const exp = tokenExpiry(token);
  if (token.split('.').length !== 3) {
    showMessage('That does not look like a token (a JWT has three parts separated by dots)', 'signin');
    return;
  }
  if (exp !== null && exp * 1000 <= Date.now()) {
    showMessage('That token has expired', 'signin');
    return;
  }
  signingInWith('token-submit', () => start({ token, dev: false }));
});

$('show-token-form').addEventListener('click', () => showTokenForm(''));
$('signout').addEventListener('click', signOut);

$('call-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const callee = $('callee').value.trim();
  if (!callee || !client) return;
  lastPeer = callee;
  showMessage('');
  client.startCall(callee);
});
$('accept-button').addEventListener('click', () => client && client.acceptCall());
$('reject-button').addEventListener('click', () => client && client.rejectCall());
$('hangup-button').addEventListener('click', () => client && client.endCall());

// What the page shows can be checked from outside (tests, the console);
// nothing here changes anything.
window.goringDemo = Object.freeze({
  peerConnection: () => (client ? client.peerConnection : null),
  connectionState: () => (client ? client.connectionState : 'idle'),
  callState: () => (client ? client.callState : 'idle'),
});

const saved = sessionStorage.getItem(STORAGE_KEY);
if (saved) {
  try {
    const s = JSON.parse(saved);
    const exp = tokenExpiry(s.token);
    if (s.token && (s.dev || exp === null || exp * 1000 > Date.now())) start(s);
  } catch {
    sessionStorage.removeItem(STORAGE_KEY);
  }
}
