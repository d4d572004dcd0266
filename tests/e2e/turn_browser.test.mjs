// The demo page in Chromium with its call forced through coturn: goring
// (serving web/ and handing out TURN credentials in ice.servers) and coturn
// (use-auth-secret on loopback) run side by side; two people open the page
// with ?relay=1 (iceTransportPolicy 'relay'), call, and both peer
// connections reach `connected` on a relay candidate pair, with the
// credentials goring handed out, and audio arrives both ways.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { artefactDir, startGoring, startRedis, stopAll, waitFor } from './lib/cluster.mjs';
import { launchBrowser } from './lib/browser.mjs';
import { startCoturn } from './lib/coturn.mjs';
import { call, click, media, openPhone, screenshot, waitCallState, waitIncoming } from './lib/phone.mjs';
import { pageUrl, webRoot } from './lib/web.mjs';

const TURN_SECRET = 'e2e_turn_browser_secret';
const dir = artefactDir('turn_browser');
let browser;
let redis;
let coturn;
let url;

before(async () => {
  redis = await startRedis(dir);
  coturn = await startCoturn(dir, { secret: TURN_SECRET, realm: 'goring.test' });
  const goring = await startGoring(dir, {
    redis,
    env: { WEB_ROOT: webRoot, TURN_URLS: coturn.urls.join(','), TURN_SECRET, TURN_TTL: '600' },
  });
  url = `${await pageUrl(goring)}?relay=1`;
  browser = await launchBrowser(chromium);
});

after(async () => {
  await browser?.close();
  await stopAll();
});

/** What the page's peer connection uses and where its packets go (getStats). */
function relayState(phone) {
  return phone.page.evaluate(async () => {
    const pc = window.goringDemo.peerConnection();
    if (!pc) return null;
    const config = pc.getConfiguration();
    const stats = await pc.getStats();
    let pair;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    return {
      connectionState: pc.connectionState,
      iceTransportPolicy: config.iceTransportPolicy,
      iceServers: config.iceServers.map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
      local: local && { candidateType: local.candidateType, address: local.address, relayProtocol: local.relayProtocol },
      remote: remote && { candidateType: remote.candidateType, address: remote.address },
    };
  });
}

test('a call between two pages forced through coturn connects on a relay pair', async () => {
  const alice = await openPhone(browser, url, 'relay-alice', { name: 'Alice', dir, redis });
  const bob = await openPhone(browser, url, 'relay-bob', { name: 'Bob', dir, redis });
  try {
    await call(alice, 'relay-bob');
    assert.equal(await waitIncoming(bob), 'Alice');
    await click(bob, 'accept-button');
    await waitCallState(alice, 'connected');
    await waitCallState(bob, 'connected');

    for (const phone of [alice, bob]) {
      const s = await waitFor(`${phone.userId}'s peer connection to be connected`, async () => {
        const st = await relayState(phone);
        return st?.connectionState === 'connected' && st.local && st;
      }, 15_000);
      assert.equal(s.iceTransportPolicy, 'relay');
      assert.equal(s.local.candidateType, 'relay', `${phone.userId}: ${JSON.stringify(s)}`);
      assert.equal(s.remote.candidateType, 'relay', `${phone.userId}: ${JSON.stringify(s)}`);
      // The page uses the credentials goring handed out: coturn's REST
      // scheme, for this user, made with coturn's secret.
      const turn = s.iceServers.find((e) => e.username);
      assert.ok(turn, `${phone.userId} has TURN credentials: ${JSON.stringify(s.iceServers)}`);
      assert.deepEqual([turn.urls].flat(), coturn.urls);
      assert.match(turn.username, new RegExp(`^\\d+:${phone.userId}$`));
      assert.equal(turn.credential, createHmac('sha1', TURN_SECRET).update(turn.username).digest('base64'));
      // Audio (Chromium's fake microphone) arrives over the relay.
      await waitFor(`${phone.userId} to receive audio`, async () => (await media(phone)).packetsReceived > 0);
      await waitFor(`coturn to have allocated for ${turn.username}`, () =>
        new RegExp(`user <${turn.username}>.*ALLOCATE processed, success`).test(coturn.log()), 5_000);
    }
    await screenshot(alice, dir, 'relay-alice-connected');
    await screenshot(bob, dir, 'relay-bob-connected');

    await click(alice, 'hangup-button');
    await waitCallState(bob, 'ended');
  } finally {
    await alice.close();
    await bob.close();
  }
});
