// The demo page in Chromium, one goring: two people call each other through
// goring, which relays the offer, answer and ICE; the audio (Chromium's
// fake microphone) flows peer to peer over loopback. Then a rejected call
// and a busy callee. One browser; each person has a context of their own.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { artefactDir, mintToken, startGoring, startRedis, stopAll, waitFor } from './lib/cluster.mjs';
import { launchBrowser } from './lib/browser.mjs';
import { call, click, media, openPhone, screenshot, text, waitCallState, waitIncoming } from './lib/phone.mjs';
import { pageUrl, webRoot } from './lib/web.mjs';

const dir = artefactDir('calls');
const stunUrl = 'stun:127.0.0.1:3478';
let browser;
let url;
let redis;

before(async () => {
  redis = await startRedis(dir);
  // A STUN URL that nothing answers (the network is closed): the pages must
  // hand goring's ice.servers to their peer connections; host candidates on
  // loopback connect the calls all the same.
  const goring = await startGoring(dir, { redis, env: { WEB_ROOT: webRoot, STUN_URLS: stunUrl } });
  url = await pageUrl(goring);
  browser = await launchBrowser(chromium);
});

after(async () => {
  await browser?.close();
  await stopAll();
});

test('alice calls bob: bob sees her name and accepts, both hear each other, alice hangs up', async () => {
  const alice = await openPhone(browser, url, 'alice', { name: 'Alice', dir, redis });
  const bob = await openPhone(browser, url, 'bob', { name: 'Bob', dir, redis });
  try {
    await call(alice, 'bob');
    assert.equal(await waitIncoming(bob), 'Alice');
    assert.match(await waitCallState(alice, 'ringing'), /Bob|bob/);
    await screenshot(bob, dir, 'call-1-bob-incoming');
    await click(bob, 'accept-button');

    assert.equal(await waitCallState(alice, 'connected'), 'In a call with Bob');
    assert.equal(await waitCallState(bob, 'connected'), 'In a call with Alice');
    for (const phone of [alice, bob]) {
      const m = await waitFor(`${phone.userId} to receive audio`, async () => {
        const s = await media(phone);
        return s.packetsReceived > 0 && s;
      });
      assert.equal(m.connectionState, 'connected');
    }
    for (const phone of [alice, bob]) {
      const iceServers = await phone.page.evaluate(() => window.goringDemo.peerConnection().getConfiguration().iceServers);
      assert.deepEqual(iceServers.map((s) => s.urls).flat(), [stunUrl]);
    }
    await screenshot(alice, dir, 'call-2-alice-connected');
    await screenshot(bob, dir, 'call-2-bob-connected');

    await click(alice, 'hangup-button');
    assert.equal(await waitCallState(bob, 'ended'), 'Alice hung up');
    assert.equal(await waitCallState(alice, 'ended'), 'You hung up');
    assert.equal((await media(bob)).connectionState, 'none');
    await screenshot(bob, dir, 'call-3-bob-ended');
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('bob rejects carol: carol reads that bob declined', async () => {
  const carol = await openPhone(browser, url, 'carol', { name: 'Carol', dir, redis });
  const bob = await openPhone(browser, url, 'bob', { name: 'Bob', dir, redis });
  try {
    await call(carol, 'bob');
    assert.equal(await waitIncoming(bob), 'Carol');
    await click(bob, 'reject-button');
    assert.equal(await waitCallState(carol, 'ended'), 'Bob declined the call');
    assert.equal(await waitCallState(bob, 'ended'), 'You declined the call');
    await screenshot(carol, dir, 'reject-carol');
  } finally {
    await carol.close();
    await bob.close();
  }
});

test('dave calls bob while bob talks to alice: dave reads that bob is busy', async () => {
  const alice = await openPhone(browser, url, 'alice', { name: 'Alice', dir, redis });
  const bob = await openPhone(browser, url, 'bob', { name: 'Bob', dir, redis });
  const dave = await openPhone(browser, url, 'dave', { name: 'Dave', dir, redis });
  try {
    await call(alice, 'bob');
    await waitIncoming(bob);
    await click(bob, 'accept-button');
    await waitCallState(bob, 'connected');

    await call(dave, 'bob');
    assert.equal(await waitCallState(dave, 'ended'), 'bob is busy in another call');
    assert.equal(await text(dave, 'message'), 'bob is busy in another call');
    await screenshot(dave, dir, 'busy-dave');
    // Bob's call goes on.
    assert.equal(await waitCallState(bob, 'connected'), 'In a call with Alice');
    await click(bob, 'hangup-button');
    assert.equal(await waitCallState(alice, 'ended'), 'Bob hung up');
  } finally {
    await alice.close();
    await bob.close();
    await dave.close();
  }
});

test('outside development mode the page asks for a token, and a pasted one signs in', async () => {
  const production = await startGoring(dir, { redis, serverId: 'goring-production', dev: false, env: { WEB_ROOT: webRoot } });
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(await pageUrl(production));
    await page.fill('[data-testid="signin-user"]', 'erin');
    await page.click('[data-testid="signin-submit"]');
    await page.waitForSelector('[data-testid="token-form"]', { state: 'visible' });
    assert.match(await page.textContent('[data-testid="message"]'), /not in development mode/);
    await page.fill('[data-testid="token-input"]', mintToken('erin', { name: 'Erin' }));
    await page.click('[data-testid="token-submit"]');
    await page.waitForSelector('[data-testid="connection-state"][data-state="open"]');
    assert.equal(await page.textContent('[data-testid="me"]'), 'Erin (erin)');
    await page.screenshot({ path: `${dir}/production-token-signed-in.png`, fullPage: true });
  } finally {
    await context.close();
    await production.stop();
  }
});

test('two quick clicks on Sign in open one connection; a name outside ASCII shows as typed', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  try {
    await page.goto(url);
    await page.fill('[data-testid="signin-user"]', 'zoe');
    await page.fill('[data-testid="signin-name"]', 'Zoë 山田');
    // Both clicks land before the token comes back from /dev/token.
    await page.evaluate(() => {
      const button = document.querySelector('[data-testid="signin-submit"]');
      button.click();
      button.click();
    });
    await page.waitForSelector('[data-testid="connection-state"][data-state="open"]');
    assert.equal(await page.textContent('[data-testid="me"]'), 'Zoë 山田 (zoe)');
    // A second client would have opened its socket by now, or soon after:
    // wait a moment for one that should not come.
    await page.waitForTimeout(500);
    assert.equal(sockets.length, 1, `one WebSocket: ${sockets.join(', ')}`);
  } finally {
    await context.close();
  }
});
