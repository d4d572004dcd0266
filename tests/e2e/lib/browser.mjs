// Debian's Chromium for the browser tests, launched by playwright-core
// (which never downloads a browser). Flags: headless in a fresh profile,
// fake camera/microphone that need no permission prompt, WebRTC allowed to
// use loopback candidates, and no background traffic to the outside (this
// machine's network is closed, and run.sh's namespace has only loopback).
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function launchBrowser(chromium, { extraArgs = [] } = {}) {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
}
