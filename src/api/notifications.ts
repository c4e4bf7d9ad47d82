import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Services } from '../services.ts';
import { ServerCommands } from '../commands/servers.ts';
import { DriveCommands } from '../commands/drives.ts';
import { ERROR_CODE_HEADER, errors, type ApiError } from '../errors.ts';
import type { ChangeEvent } from '../events.ts';
import { API } from '../domain/refs.ts';
import { parseCookies } from './auth.ts';

/** What a client hears about (docs §1.13): changes to these resources of its own account. */
export const NOTIFIED = new Set(['servers', 'drives', 'ips', 'vlans', 'fwpolicies', 'jobs', 'profile', 'subscriptions']);
const PATHS = new Set(['/websocket', `${API}/websocket`]);
const PING_MS = 30_000;

export interface Frame {
  resource_type: string;
  resource_uri: string;
  /** the object as GET shows it now; absent when it is gone */
  object?: unknown;
  /** why the change is a failure, when it is one */
  error?: string;
}

/** Servers and drives render as their GET does; other resources register their own renderer on `svc.renderers`. */
function registerCoreRenderers(svc: Services): void {
  const servers = new ServerCommands(svc);
  const drives = new DriveCommands(svc);
  const quiet = async <T>(f: () => Promise<T>): Promise<T | null> => f().catch(() => null);
  if (!svc.renderers.has('servers')) svc.renderers.set('servers', (actor, uuid) => quiet(async () => servers.render(actor, await servers.load(actor, uuid))));
  if (!svc.renderers.has('drives')) svc.renderers.set('drives', (actor, uuid) => quiet(async () => drives.render(actor, await drives.load(actor, uuid))));
  if (!svc.renderers.has('jobs'))
    svc.renderers.set('jobs', (actor, uuid) =>
      quiet(async () => {
        const j = await svc.jobs.get(actor.user, uuid);
        return j ? svc.jobs.render(j) : null;
      }),
    );
}

/** Singletons live at /{resource}/, whatever id their event carries. */
const SINGLETONS = new Set(['profile']);

/** The frame for one change, rendered for the account that owns it. */
export async function frameFor(svc: Services, user: string, e: ChangeEvent): Promise<Frame> {
  const render = svc.renderers.get(e.resource_type);
  const object = render ? await render({ user }, e.uuid).catch(() => null) : null;
  const resource_uri = SINGLETONS.has(e.resource_type) ? `${API}/${e.resource_type}/` : e.resource_uri;
  // A failure says why (a start that did not boot): the object alone would only show the server stopped again.
  return { resource_type: e.resource_type, resource_uri, ...(object ? { object } : {}), ...(e.error ? { error: e.error } : {}) };
}

/**
 * A change to another account's object, as a grantee may hear it: the object as his GET shows it (the renderer checks
 * his LIST grant), or, for an object he was shown and may see no more, a frame without it. Of the rest, nothing.
 */
async function granteeFrame(svc: Services, user: string, e: ChangeEvent, told: Set<string>): Promise<Frame | null> {
  const key = `${e.resource_type}:${e.uuid}`;
  const visible = await svc.access.canSee({ user }, e.resource_type, { uuid: e.uuid, owner: e.owner }).catch(() => false);
  const frame = visible ? await frameFor(svc, user, e) : null;
  if (frame?.object) {
    told.add(key);
    // Why the owner's start failed is for the owner and his audit log: the grantee's GET does not show it either.
    const { error: _error, ...shown } = frame;
    return shown;
  }
  if (!told.delete(key)) return null;
  return { resource_type: e.resource_type, resource_uri: e.resource_uri };
}

function refuse(socket: Duplex, status: number, reason: string, err: ApiError): void {
  const body = JSON.stringify(err.errors);
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${ERROR_CODE_HEADER}: ${err.code}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Websocket notifications at /websocket (and /api/2.0/websocket): a client that got an `async_auth` cookie from
 * `POST /accounts/action/?do=authenticate_asynchronous` connects with it and receives one JSON frame per change to its
 * own servers, drives, IPs, VLANs, subscriptions, jobs and profile, in the order they happened, and to the servers,
 * drives, IPs, VLANs and firewall policies other accounts share with it (as its GET shows them). Changes made through
 * other API nodes arrive too (the event bus crosses nodes). Anything else of anyone else never does.
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, path: string) => boolean;

export function attachNotifications(app: FastifyInstance, svc: Services, others: UpgradeHandler[] = []): void {
  registerCoreRenderers(svc);
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const path = (req.url ?? '').split('?')[0]!.replace(/\/+$/, '');
    if (!PATHS.has(path)) {
      // Other websockets on this port (the web console's bridges) take theirs; one upgrade listener answers all.
      if (others.some((h) => h(req, socket, head, path))) return;
      return refuse(socket, 404, 'Not Found', errors.noRoute());
    }
    const token = parseCookies(req.headers.cookie).async_auth;
    void (token ? svc.store.users.resolveToken(token, 'async') : Promise.resolve(undefined))
      .then((who) => {
        if (!who) return refuse(socket, 401, 'Unauthorized', errors.unauthorized());
        wss.handleUpgrade(req, socket, head, (ws) => serveClient(svc, ws, who.user));
      })
      .catch(() => refuse(socket, 500, 'Internal Server Error', errors.backend()));
  });

  app.addHook('onClose', async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });
}

/** What other accounts share through ACLs: a grantee hears of changes to these when he may see them. */
const SHARED = new Set(['servers', 'drives', 'ips', 'vlans', 'fwpolicies']);

function serveClient(svc: Services, ws: WebSocket, user: string): void {
  let chain = Promise.resolve();
  /** Shared objects this grantee was told about: when he can no longer see one, he hears it is gone, nothing more. */
  const told = new Set<string>();
  const unsubscribe = svc.bus.subscribe((e) => {
    if (!NOTIFIED.has(e.resource_type)) return;
    const own = e.owner === user;
    if (!own && !(e.owner && SHARED.has(e.resource_type))) return;
    // Rendered one after another, so frames keep the order of the changes.
    chain = chain.then(async () => {
      let frame: Frame | null;
      if (own) frame = await frameFor(svc, user, e);
      else frame = await granteeFrame(svc, user, e, told);
      if (frame && ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
    });
  });
  let alive = true;
  ws.on('pong', () => (alive = true));
  const ping = setInterval(() => {
    if (!alive) return ws.terminate();
    alive = false;
    ws.ping();
  }, PING_MS);
  ping.unref();
  ws.on('message', () => {}); // clients only listen
  ws.on('error', () => {});
  ws.on('close', () => {
    clearInterval(ping);
    unsubscribe();
  });
}
