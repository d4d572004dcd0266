// The demo page (web/) driven as a person would: sign in by typing a user
// id, call, answer, hang up; and what the page shows, read through its
// data-testid attributes. getStats runs in the page on the peer connection
// the page exposes read-only (window.goringDemo.peerConnection()).
import fs from 'node:fs';
import path from 'node:path';
import { presenceWatch } from './cluster.mjs';

const T = 15_000;
const sel = (id) => `[data-testid="${id}"]`;

/**
 * A new browser context (its own storage, like another person's browser)
 * with the page at `url`, signed in as `userId`. Console lines and page
 * errors go to <dir>/<userId>-console.log. With `redis` (from startRedis),
 * also waits until goring has registered the page's connection there
 * (presenceWatch), so others can call the user at once: the page shows
 * "open" as soon as the WebSocket is, before that registration.
 */
export async function openPhone(browser, url, userId, { name, dir, redis } = {}) {
  const registered = redis ? await presenceWatch(redis, userId, T) : null;
  const context = await browser.newContext();
  const page = await context.newPage();
  if (dir) {
    const logPath = path.join(dir, `${userId}-console.log`);
    page.on('console', (msg) => fs.appendFileSync(logPath, `[${msg.type()}] ${msg.text()}\n`));
    page.on('pageerror', (err) => fs.appendFileSync(logPath, `[pageerror] ${err.message}\n`));
  }
  await page.goto(url);
  await page.fill(sel('signin-user'), userId);
  if (name) await page.fill(sel('signin-name'), name);
  await page.click(sel('signin-submit'));
  await page.waitForSelector(`${sel('connection-state')}[data-state="open"]`, { timeout: T });
  if (registered) await registered();
  return { page, context, userId, close: () => context.close() };
}

export async function call(phone, calleeId) {
  await phone.page.fill(sel('callee'), calleeId);
  await phone.page.click(sel('call-button'));
}

/** Waits until the page's call state is `state`; returns the text shown. */
export async function waitCallState(phone, state, timeout = T) {
  await phone.page.waitForSelector(`${sel('call-state')}[data-state="${state}"]`, { timeout });
  return phone.page.textContent(sel('call-state'));
}

export async function waitConnection(phone, state, timeout = T) {
  await phone.page.waitForSelector(`${sel('connection-state')}[data-state="${state}"]`, { timeout });
  return phone.page.textContent(sel('connection-state'));
}

/** The incoming call panel's caller name, once it shows. */
export async function waitIncoming(phone, timeout = T) {
  await phone.page.waitForSelector(sel('incoming'), { state: 'visible', timeout });
  return phone.page.textContent(sel('incoming-caller'));
}

export const click = (phone, testId) => phone.page.click(sel(testId));
export const text = (phone, testId) => phone.page.textContent(sel(testId));

/** The peer connection's state and its inbound audio packets (getStats). */
export function media(phone) {
  return phone.page.evaluate(async () => {
    const pc = window.goringDemo.peerConnection();
    if (!pc) return { connectionState: 'none', packetsReceived: 0 };
    let packetsReceived = 0;
    (await pc.getStats()).forEach((report) => {
      if (report.type === 'inbound-rtp' && report.kind === 'audio') packetsReceived += report.packetsReceived ?? 0;
    });
    return { connectionState: pc.connectionState, packetsReceived };
  });
}

export async function screenshot(phone, dir, name) {
  await phone.page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}
