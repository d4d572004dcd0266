// The harness itself: a private Redis and goring start inside run.sh's
// network namespace, a WebSocket client connects with a token, and Chromium
// (Debian's, driven by playwright-core) starts there and reaches goring.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { chromium } from 'playwright-core';
import { artefactDir, mintToken, startGoring, startRedis, stopAll } from './lib/cluster.mjs';
import { launchBrowser } from './lib/browser.mjs';

after(stopAll);

test('goring answers a WebSocket client and a browser on loopback', async () => {
  const dir = artefactDir('harness');
  const redis = await startRedis(dir);
  const goring = await startGoring(dir, { redis });

  const ws = new WebSocket(`${goring.wsUrl}/ws?token=${mintToken('harness-user')}`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.close();

  const browser = await launchBrowser(chromium);
  try {
    const page = await browser.newPage();
    const res = await page.goto(`${goring.httpUrl}/health`);
    assert.equal(res.status(), 200);
  } finally {
    await browser.close();
  }
});
