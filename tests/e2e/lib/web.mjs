// Where a test's browser loads the demo page from: goring itself, which
// serves web/ when WEB_ROOT is set (and mints tokens at POST /dev/token in
// development mode).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, mintToken } from './cluster.mjs';

/** This checkout's web/ (the tests may run from any directory). */
export const webRoot = fileURLToPath(new URL('../../../web', import.meta.url));

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; frame-ancestors 'none'";
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };

/** The page's URL on `goring` (started with env WEB_ROOT). */
export async function pageUrl(goring, root = webRoot) {
  const res = await fetch(`${goring.httpUrl}/`).catch(() => null);
  if (res && res.status === 200) return `${goring.httpUrl}/`;
  // TEMPORARY until goring serves WEB_ROOT: an imitation of it.
  const port = await freePort();
  const server = http.createServer((req, res2) => {
    if (req.method === 'POST' && req.url === '/dev/token') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const { user_id: id, name } = JSON.parse(body);
        res2.writeHead(200, { 'Content-Type': 'application/json' });
        res2.end(JSON.stringify({ token: mintToken(id, { name }), user_id: id }));
      });
      return;
    }
    let file = req.url.split('?')[0];
    if (file === '/') file = '/index.html';
    if (file === '/config.json' && !fs.existsSync(path.join(root, 'config.json'))) {
      res2.writeHead(200, { 'Content-Type': 'application/json' });
      res2.end(JSON.stringify({ servers: [`${goring.wsUrl}/ws`] }));
      return;
    }
    const full = path.join(root, path.normalize(file));
    if (!full.startsWith(root) || !fs.existsSync(full)) {
      res2.writeHead(404);
      res2.end();
      return;
    }
    res2.writeHead(200, { 'Content-Type': TYPES[path.extname(full)] ?? 'application/octet-stream', 'Content-Security-Policy': CSP });
    res2.end(fs.readFileSync(full));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  server.unref();
  return `http://127.0.0.1:${port}/`;
}
