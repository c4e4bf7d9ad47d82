import fsp from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import type { Actor } from '../commands/servers.ts';
import { API } from '../domain/refs.ts';
import { ApiError, errors } from '../errors.ts';

/** A handler's answer with a status other than 200. */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}
export const created = (body: unknown) => new Reply(201, body);
export const accepted = (body: unknown) => new Reply(202, body);
export const noContent = () => new Reply(204, undefined);

export type Query = Record<string, string | undefined>;
export interface Ctx {
  actor: Actor;
  params: Record<string, string>;
  query: Query;
  body: unknown;
  req: FastifyRequest;
}

/**
 * Who may call a route: `public` (no credentials; only the health check, the locations, the OpenAPI document, the
 * metrics and login), `user` (Basic, Bearer or a cookie session) or `basic-only` (Basic credentials only: drive uploads).
 */
export type Access = 'user' | 'public' | 'basic-only';
export const ACCESS: ReadonlySet<string> = new Set<Access>(['user', 'public', 'basic-only']);

/** The permissions an ACL can grant (the same list as src/commands/access.ts, which the domain checks). */
export type GranteePermission = 'LIST' | 'EDIT' | 'CLONE' | 'START' | 'STOP' | 'OPEN_VNC' | 'ATTACH' | 'DELETE';

export interface RouteOptions {
  schema?: FastifySchema;
  /** Required: a route that does not say who may call it refuses to register. */
  auth: Access;
  /**
   * The ACL permission a grantee (a user the owner shared the object with) needs to call this route on the object its
   * id names; unset where no grantee may (the owner's own objects, account-wide resources).
   */
  permission?: GranteePermission;
  /** which rate-limit bucket; defaults to the method */
  summary?: string;
  tags?: string[];
  /** The handler gets the request body as a stream (`body`), unparsed and unbounded, and its answer is not compressed. */
  stream?: boolean;
}

type Handler = (ctx: Ctx) => Promise<unknown> | unknown;

/** A request to change something that its handler refused with one of the API's errors (for the audit log). */
export interface Refusal {
  actor: Actor;
  method: string;
  /** the route pattern under /api/2.0, e.g. /servers/:uuid/action/ */
  path: string;
  params: Record<string, string>;
  query: Query;
  error: ApiError;
}

/** Every route pattern and its methods, for OPTIONS and 405 answers. */
export class RouteTable {
  private readonly patterns = new Map<string, { re: RegExp; methods: Set<string> }>();

  add(method: string, pattern: string): void {
    const key = pattern.replace(/\/$/, '');
    let entry = this.patterns.get(key);
    if (!entry) {
      const re = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+')}/?$`);
      entry = { re, methods: new Set() };
      this.patterns.set(key, entry);
    }
    entry.methods.add(method);
  }

  /** [pattern, methods] of every route, for documentation and its tests. */
  entries(): Array<[string, string[]]> {
    return [...this.patterns.entries()].map(([k, e]) => [k, [...e.methods]]);
  }

  methodsFor(url: string): string[] {
    const path = url.split('?')[0]!;
    // Static segments win over parameters, as in the router: /servers/detail is not /servers/:uuid.
    const matches = [...this.patterns.entries()].filter(([, e]) => e.re.test(path));
    if (!matches.length) return [];
    matches.sort((a, b) => (a[0].match(/:/g)?.length ?? 0) - (b[0].match(/:/g)?.length ?? 0));
    const best = matches[0]![1];
    return [...best.methods];
  }
}

/** Declares routes under /api/2.0: each with its schema, its auth requirement and a handler that returns a value. */
export class Routes {
  constructor(
    private readonly app: FastifyInstance,
    readonly table: RouteTable,
  ) {}

  /** Told of every refused change. */
  readonly refusals: Array<(r: Refusal) => void> = [];
  /** Awaited before a change is answered: records it caused that a client reading next must find (the audit log). */
  readonly beforeAnswer: Array<() => Promise<void>> = [];

  private add(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: RouteOptions, handler: Handler) {
    const url = `${API}${path}`;
    if (!ACCESS.has(opts?.auth)) throw new Error(`${method} ${url} declares no access: auth must be one of ${[...ACCESS].join(', ')}`);
    this.table.add(method, url);
    if (method === 'GET') this.table.add('HEAD', url);
    this.app.route({
      method,
      url,
      schema: { ...(opts.schema ?? {}), ...(opts.summary ? { summary: opts.summary } : {}), ...(opts.tags ? { tags: opts.tags } : {}) },
      config: { auth: opts.auth, permission: opts.permission, stream: opts.stream === true },
      ...(opts.stream ? { compress: false, decompress: false } : {}),
      handler: async (req, rep) => {
        const actor = req.actor as Actor;
        const ctx = { actor, params: req.params as Record<string, string>, query: req.query as Query, body: req.body, req };
        let out: unknown;
        try {
          out = await handler(ctx);
        } catch (error) {
          if (actor && method !== 'GET' && error instanceof ApiError) {
            for (const tell of this.refusals) tell({ actor, method, path, params: ctx.params, query: ctx.query, error });
            for (const settle of this.beforeAnswer) await settle();
          }
          throw error;
        }
        if (method !== 'GET') for (const settle of this.beforeAnswer) await settle();
        if (out instanceof Reply) {
          rep.code(out.status).headers(out.headers);
          if (out.status === 204) {
            rep.header('content-type', 'text/html; charset=utf-8');
            return rep.send();
          }
          if (opts.stream && out.body && typeof (out.body as Readable).pipe === 'function') return sendStream(rep, out);
          return rep.send(out.body);
        }
        return out;
      },
    });
  }

  get(path: string, opts: RouteOptions, handler: Handler) {
    this.add('GET', path, opts, handler);
  }
  post(path: string, opts: RouteOptions, handler: Handler) {
    this.add('POST', path, opts, handler);
  }
  put(path: string, opts: RouteOptions, handler: Handler) {
    this.add('PUT', path, opts, handler);
  }
  delete(path: string, opts: RouteOptions, handler: Handler) {
    this.add('DELETE', path, opts, handler);
  }
}

/**
 * Sends a streamed answer (a drive download) straight to the socket, bypassing Fastify's reply pipeline. Errors
 * after the headers can only end the connection.
 */
function sendStream(rep: FastifyReply, out: Reply): void {
  rep.hijack();
  const res = rep.raw;
  // The idle timeout, lifted while the handler worked (app.ts), holds again for a client that stops reading.
  res.socket?.setTimeout(rep.server.server.timeout);
  res.writeHead(out.status, { ...(rep.getHeaders() as Record<string, string>), ...out.headers });
  const body = out.body as Readable | FileSlice;
  const done = body instanceof FileSlice ? body.pipeTo(res) : pipeline(body, res);
  done.catch(() => res.destroy());
}

/**
 * A byte range of a file, sent through two reused buffers: no allocation per chunk, so a GiB costs no garbage
 * collection however large the heap is.
 */
export class FileSlice {
  static readonly CHUNK = 1 << 20;
  constructor(
    readonly file: string,
    readonly start: number,
    readonly end: number,
  ) {}

  pipe(): never {
    throw new Error('FileSlice is sent by sendStream');
  }

  async pipeTo(res: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
    const fh = await fsp.open(this.file, 'r');
    try {
      const bufs = [Buffer.allocUnsafe(FileSlice.CHUNK), Buffer.allocUnsafe(FileSlice.CHUNK)];
      let written: Promise<void> = Promise.resolve();
      for (let pos = this.start, i = 0; pos <= this.end && !res.destroyed; i ^= 1) {
        const b = bufs[i]!;
        const { bytesRead } = await fh.read(b, 0, Math.min(b.length, this.end - pos + 1), pos);
        if (bytesRead === 0) break;
        await written; // the other buffer's write has reached the socket: it may be refilled next round
        written = new Promise((ok, fail) => res.write(b.subarray(0, bytesRead), (e) => (e ? fail(e) : ok())));
        pos += bytesRead;
      }
      await written;
      res.end();
    } finally {
      await fh.close();
    }
  }
}

/** Action bodies may be empty, null or {}. */
export function actionBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw errors.invalid(null, 'Expected a JSON object');
  return body as Record<string, unknown>;
}

export function objectBody(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw errors.invalid(null, 'Expected a JSON object');
  return body as Record<string, unknown>;
}

/**
 * Reads a request body into memory, refusing more than `limit` bytes (declared or sent) and, with `timeoutMs`, a body
 * not received whole in that time (408; the connection is closed, as the rest of the body will not be read).
 */
export function readLimited(payload: NodeJS.ReadableStream, limit: number, timeoutMs = 0): Promise<Buffer> {
  const tooLarge = () => Object.assign(new Error('body too large'), { bodyTooLarge: true, statusCode: 413 });
  const declared = Number((payload as { headers?: Record<string, unknown> }).headers?.['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = timeoutMs
      ? setTimeout(() => {
          payload.removeAllListeners('data');
          payload.pause();
          reject(errors.bodyTimeout(timeoutMs));
        }, timeoutMs)
      : undefined;
    payload.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        clearTimeout(timer);
        (payload as { destroy?: () => void }).destroy?.();
        reject(tooLarge());
      } else chunks.push(c);
    });
    payload.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    payload.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
