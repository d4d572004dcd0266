// The demo page in Chromium with two goring instances sharing one Redis:
// a call between users on different instances, and a call that survives
// the drain of one of them (SIGTERM: close 1012, the page reconnects to
// the other instance, gets call.resumed and keeps its peer connection).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { artefactDir, startGoring, startRedis, stopAll, waitFor } from './lib/cluster.mjs';
import { launchBrowser } from './lib/browser.mjs';
import {
  call,
  click,
  media,
  openPhone,
  screenshot,
  text,
  waitCallState,
  waitConnection,
  waitIncoming,
} from './lib/phone.mjs';
import { pageUrl, webRoot } from './lib/web.mjs';

const dir = artefactDir('cluster');
let browser;
let redis;
let goring1;
let goring2;
let url1;
let url2;

async function receivesAudio(phone) {
  return waitFor(`${phone.userId} to receive audio`, async () => {
    const s = await media(phone);
    return s.connectionState === 'connected' && s.packetsReceived > 0 && s;
  });
}

before(async () => {
  redis = await startRedis(dir);
  // Instance 1 serves a copy of web/ with a config.json that lists both
  // instances, as an operator would: its pages fail over to instance 2.
  const web1 = path.join(dir, 'web-1');
  fs.rmSync(web1, { recursive: true, force: true });
  fs.cpSync(webRoot, web1, { recursive: true });
  goring1 = await startGoring(dir, { redis, serverId: 'goring-1', env: { WEB_ROOT: web1 } });
  goring2 = await startGoring(dir, { redis, serverId: 'goring-2', env: { WEB_ROOT: webRoot } });
  fs.writeFileSync(
    path.join(web1, 'config.json'),
    JSON.stringify({ servers: [`${goring1.wsUrl}/ws`, `${goring2.wsUrl}/ws`] }),
  );
  url1 = await pageUrl(goring1);
  url2 = await pageUrl(goring2);
  browser = await launchBrowser(chromium);
});

after(async () => {
  await browser?.close();
  await stopAll();
});

test('alice on instance 1 calls bob on instance 2: both hear each other, alice hangs up', async () => {
  const alice = await openPhone(browser, url1, 'alice', { name: 'Alice', dir, redis });
  const bob = await openPhone(browser, url2, 'bob', { name: 'Bob', dir, redis });
  try {
    await call(alice, 'bob');
    assert.equal(await waitIncoming(bob), 'Alice');
    await click(bob, 'accept-button');
    assert.equal(await waitCallState(alice, 'connected'), 'In a call with Bob');
    assert.equal(await waitCallState(bob, 'connected'), 'In a call with Alice');
    await receivesAudio(alice);
    await receivesAudio(bob);
    await screenshot(alice, dir, 'two-instances-alice-connected');
    await click(alice, 'hangup-button');
    assert.equal(await waitCallState(bob, 'ended'), 'Alice hung up');
    await screenshot(bob, dir, 'two-instances-bob-ended');
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('instance 1 drains during a call: alice reconnects to instance 2, the call goes on, bob hangs up', async () => {
  const alice = await openPhone(browser, url1, 'alice', { name: 'Alice', dir, redis });
  const bob = await openPhone(browser, url2, 'bob', { name: 'Bob', dir, redis });
  try {
    await call(alice, 'bob');
    await waitIncoming(bob);
    await click(bob, 'accept-button');
    await waitCallState(alice, 'connected');
    await waitCallState(bob, 'connected');
    const before = await receivesAudio(alice);
    // Mark the page's peer connection, to know it again after the drain.
    await alice.page.evaluate(() => {
      window.peerConnectionBeforeDrain = window.goringDemo.peerConnection();
    });

    // SIGTERM: goring closes every WebSocket with 1012 and exits.
    const code = await goring1.stop('SIGTERM');
    assert.equal(code, 0);
    await waitFor('alice to get the call back from instance 2', async () =>
      (await text(alice, 'log')).includes('The call with Bob goes on'),
    );
    assert.equal(await waitConnection(alice, 'open'), 'Connected');
    await screenshot(alice, dir, 'resume-alice-after-drain');
    // The peer connection was kept (the very same object, not a new one
    // that happens to receive audio too), and audio keeps coming in on it.
    assert.equal(await waitCallState(alice, 'connected'), 'In a call with Bob');
    assert.equal(
      await alice.page.evaluate(() => window.goringDemo.peerConnection() === window.peerConnectionBeforeDrain),
      true,
      'the same RTCPeerConnection after the resume',
    );
    await waitFor('more audio after the drain', async () => (await media(alice)).packetsReceived > before.packetsReceived);
    assert.equal(await waitCallState(bob, 'connected'), 'In a call with Alice');

    await click(bob, 'hangup-button');
    assert.equal(await waitCallState(alice, 'ended'), 'Bob hung up');
    await screenshot(alice, dir, 'resume-alice-ended');
  } finally {
    await alice.close();
    await bob.close();
  }
});
