// Where a test's browser loads the demo page from: goring itself, which
// serves web/ when WEB_ROOT is set (and mints tokens at POST /dev/token in
// development mode, which startGoring uses).
import { fileURLToPath } from 'node:url';

/** This checkout's web/ (the tests may run from any directory). */
export const webRoot = fileURLToPath(new URL('../../../web', import.meta.url));

/** The page's URL on `goring` (started with env WEB_ROOT); checks it is served. */
export async function pageUrl(goring) {
  const url = `${goring.httpUrl}/`;
  const res = await fetch(url);
  const body = await res.text();
  if (res.status !== 200 || !body.includes('app.js'))
    throw new Error(`${url} does not serve the demo page (status ${res.status}): is WEB_ROOT set?`);
  return url;
}
