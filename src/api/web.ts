import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Where `npm install` (web/build.ts) puts the web console's bundle. */
export const WEB_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/dist');

/**
 * No inline script and no eval: scripts come only from this origin's bundle. Styles allow inline ones because
 * xterm.js and noVNC size and place their elements with style attributes and a generated stylesheet; no script
 * can be injected through them. Websockets (notifications, consoles) go to this origin only.
 */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
    .header('x-frame-options', 'DENY');
}

/**
 * The web console at `/`: the built files, read once at start-up (a handful of files; a rebuild needs a restart).
 * Without a build, `/` says how to make one instead of a bare 404.
 */
export function registerWebConsole(app: FastifyInstance, dist = WEB_DIST): void {
  const files = new Map<string, { body: Buffer; type: string }>();
  if (fs.existsSync(dist))
    for (const name of fs.readdirSync(dist)) {
      const type = TYPES[path.extname(name)];
      if (type) files.set(name, { body: fs.readFileSync(path.join(dist, name)), type });
    }
  const page = files.get('index.html');
  app.get('/', { config: { auth: 'public' }, schema: { hide: true } as object }, async (_req, reply) => {
    secure(reply).header('cache-control', 'no-cache');
    const unbuilt = 'The web console is not built: run `npm install` (or `node --import tsx web/build.ts`).\n';
    if (!page) return reply.code(503).type('text/plain; charset=utf-8').send(unbuilt);
    return reply.type(page.type).send(page.body);
  });
  app.get('/assets/:file', { config: { auth: 'public' }, schema: { hide: true } as object }, async (req, reply) => {
    const f = files.get((req.params as { file: string }).file);
    secure(reply);
    if (!f || (req.params as { file: string }).file === 'index.html') return reply.code(404).type('text/plain; charset=utf-8').send('Not found\n');
    // The names do not change with their content: revalidate rather than cache for long.
    return reply.header('cache-control', 'no-cache').type(f.type).send(f.body);
  });
}
