import { randomUuid } from '../domain/random.ts';
import fs from 'node:fs';
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyContextConfig, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import compress from '@fastify/compress';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Services } from '../services.ts';
import { ApiError, ERROR_CODE_HEADER, errors } from '../errors.ts';
import { Authenticator } from './auth.ts';
import type { Actor } from '../commands/servers.ts';
import { RateLimiter } from './rate-limit.ts';
import { ACCESS, readLimited, RouteTable, Routes, type Access, type GranteePermission } from './http.ts';
import { API } from '../domain/refs.ts';
import { registerResources } from './resources.ts';
import { attachNotifications } from './notifications.ts';
import { registerMetrics } from './metrics.ts';
import { registerWebConsole } from './web.ts';
import { consoleBridge } from './console-bridge.ts';
import { Faults } from './faults.ts';
import { RequestLog } from './request-log.ts';
import { accountUuid, opensigmaRoutes } from './opensigma.ts';
import { firewallCheckRoutes } from './firewall-check.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** who is calling, set by the auth hook (null on public routes) */
    actor: Actor | null;
  }
  interface FastifyContextConfig {
    /** who may call the route; every route declares it (unset only where no route matched) */
    auth?: Access;
    /** the ACL permission a grantee needs (see RouteOptions) */
    permission?: GranteePermission;
    /** the body is handed to the handler as a stream (drive uploads) */
    stream?: boolean;
  }
}

/** ?format=json asks for JSON whatever Accept says, as the real API allows. */
function acceptable(req: FastifyRequest, config: FastifyContextConfig): ApiError | undefined {
  const accept = req.headers.accept;
  if (!accept || /(application\/json|\*\/\*|application\/\*|text\/)/.test(accept)) return undefined;
  if (!/[?&]format=json(&|$)/.test(req.url) && !config.stream && req.url.startsWith(API)) return errors.notAcceptable();
  return undefined;
}

/**
 * A refused request's body is never read: its connection is closed after the answer instead of being drained, so a
 * client cannot make the server read what it sends before it has proved who it is.
 */
function refuseUnread(req: FastifyRequest, reply: FastifyReply, e: unknown): Error {
  const h = req.headers;
  if (h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')) reply.header('connection', 'close');
  return e as Error;
}

/**
 * An error's headers, less the Basic challenge for a request from a browser's script (X-Requested-With, or a session
 * cookie): the browser would otherwise show its own login dialog over the web console's.
 */
function answerHeaders(req: FastifyRequest, e: ApiError): Record<string, string> {
  if (e.statusCode !== 401) return e.headers;
  const h = req.headers;
  const browser = /^xmlhttprequest$/i.test(String(h['x-requested-with'] ?? '')) || /(^|;)\s*sessionid=/.test(h.cookie ?? '');
  if (!browser) return e.headers;
  const { 'www-authenticate': _challenge, ...rest } = e.headers;
  return rest;
}

/**
 * Connections that have not yet made an authenticated request, oldest first. Over the cap the oldest is closed, so
 * idle or slow anonymous sockets cannot hold every descriptor, while a client that connects and sends its request
 * at once is not locked out by them. Authenticated connections are never counted.
 */
class AnonymousConnections {
  private readonly sockets = new Map<Socket, true>();
  constructor(private readonly max: number) {}

  add(socket: Socket): void {
    this.sockets.set(socket, true);
    socket.once('close', () => this.sockets.delete(socket));
    while (this.sockets.size > this.max) {
      const oldest = this.sockets.keys().next().value!;
      this.sockets.delete(oldest);
      oldest.destroy();
    }
  }

  authenticated(socket: Socket): void {
    if (this.sockets.size) this.sockets.delete(socket);
  }
}

export interface App {
  app: FastifyInstance;
  faults: Faults;
  routes: Routes;
  auth: Authenticator;
}

/** Builds the HTTP API over the given services. */
export async function buildApp(svc: Services, opts: { logger?: boolean } = {}): Promise<App> {
  const { tlsCert, tlsKey } = svc.config;
  if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new Error('OPENSIGMA_TLS_CERT and OPENSIGMA_TLS_KEY go together');
  const auth = new Authenticator(svc);
  const cfg = svc.config;
  // Slow clients: headers must arrive within headersTimeout (checked often enough to matter), an idle connection is
  // closed (connectionTimeout, socket inactivity, which also bounds a stalled upload), and a JSON body has its own
  // deadline (readLimited). Node's requestTimeout stays off: it would cut every drive upload longer than it.
  const server = { headersTimeout: cfg.headersTimeoutMs, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(cfg.headersTimeoutMs / 4))) };
  const app = Fastify({
    ...(tlsCert && tlsKey ? { https: { cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey), ...server } } : { http: server }),
    connectionTimeout: cfg.idleTimeoutMs,
    keepAliveTimeout: cfg.keepAliveTimeoutMs,
    requestTimeout: 0,
    // The process's own logger, so request lines share its format (JSON or pretty) and destination.
    ...(opts.logger === false ? { logger: false } : { loggerInstance: svc.log }),
    bodyLimit: svc.config.bodyLimit,
    // Any length reaches the route, whose schema refuses an id that cannot exist (404): the router's own limit (100)
    // answered 414 in Fastify's format, before authentication. Node's header limit bounds the URL anyway.
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 64 * 1024 },
    // A path the router cannot decode (bad percent-encoding): 401 to anyone not authenticated, else the API's 400.
    frameworkErrors: (_err, req, reply: FastifyReply) => {
      reply.header('x-content-type-options', 'nosniff');
      const refuse = (e: ApiError) => void reply.code(e.statusCode).headers(answerHeaders(req, e)).send(e.errors);
      const known = auth.knownOnConnection(req);
      const bad = () => refuse(errors.badUrl());
      if (known) return bad();
      auth.authenticate(req, 'user').then(bad, (e) => refuse(e instanceof ApiError ? e : errors.unauthorized()));
    },
    // Protocol errors (oversized headers, timeouts, garbage) are answered in the API's format too, then the socket is closed.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const [status, reason, e] =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', errors.requestTimeout()]
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'Request Header Fields Too Large', errors.headersTooLarge()]
            : [400, 'Bad Request', errors.badHttp()];
      const body = JSON.stringify(e.errors);
      if (socket.writable)
        socket.write(
          `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
            `x-content-type-options: nosniff\r\n${ERROR_CODE_HEADER}: ${e.code}\r\nconnection: close\r\n\r\n${body}`,
        );
      socket.destroy();
    },
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUuid('request');
    },
    // Log lines name it request_id, as the X-Request-Id header it comes from (operators grep for it across nodes).
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Routes registered straight on Fastify (health, metrics, the OpenAPI document) must declare their access as well.
  app.addHook('onRoute', (route) => {
    if (!ACCESS.has(route.config?.auth as string))
      throw new Error(`${route.method} ${route.url} declares no access: config.auth must be one of ${[...ACCESS].join(', ')}`);
  });

  const table = new RouteTable();
  const limiter = new RateLimiter(svc);
  const faults = new Faults(svc.log, (ref) => accountUuid(svc, ref));
  if (svc.config.faultsFile) await faults.loadFile(svc.config.faultsFile);
  // Off by default: then no hook at all is registered, and requests pay nothing for it.
  const requestLog = svc.config.requestLog > 0 ? new RequestLog(svc.config.requestLog) : null;
  requestLog?.registerBeforeCompression(app as unknown as FastifyInstance);

  await app.register(swagger, {
    openapi: {
      info: { title: 'opensigma: CloudSigma REST API 2.0', version: '2.0' },
      components: { securitySchemes: { basic: { type: 'http', scheme: 'basic' }, bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ basic: [] }, { bearer: [] }],
    },
  });
  await app.register(compress, { global: true, threshold: 1024, encodings: ['gzip', 'deflate'] });

  // Bodies: only application/json is parsed (an empty one is null: action calls send none, and a request without a
  // body and without a content type is not parsed at all); any other declared type is 415, so a browser's form or
  // text/plain POST from another site is never taken for a JSON request. Streaming routes (drive uploads) get the raw
  // request stream instead, whatever its type, never held in memory.
  app.removeAllContentTypeParsers();
  const json = (_req: FastifyRequest, payload: NodeJS.ReadableStream, done: (err: Error | null, body?: unknown) => void) => {
    readLimited(payload, svc.config.bodyLimit, svc.config.requestTimeoutMs).then(
      (body) => {
        if (body.length === 0) return done(null, null);
        try {
          done(null, JSON.parse(body.toString('utf8')));
        } catch (e) {
          done(errors.badJson((e as Error).message) as unknown as Error, undefined);
        }
      },
      (e) => done(e as Error, undefined),
    );
  };
  app.addContentTypeParser('*', (req, payload, done) => {
    if (req.routeOptions.config.stream) return done(null, payload);
    const type = req.headers['content-type'];
    // No content type (a script's Blob body has none): only an empty body passes, and it is null.
    if (type === undefined)
      return readLimited(payload, svc.config.bodyLimit, svc.config.requestTimeoutMs).then(
        (body) => (body.length === 0 ? done(null, null) : done(errors.unsupportedMediaType('') as unknown as Error, undefined)),
        (e) => done(e as Error, undefined),
      );
    if (/^application\/json\s*(;|$)/i.test(type)) return json(req, payload, done);
    done(errors.unsupportedMediaType(type) as unknown as Error, undefined);
  });

  const anonymous = new AnonymousConnections(cfg.maxAnonymousConnections);
  app.server.on(tlsCert ? 'secureConnection' : 'connection', (socket: Socket) => anonymous.add(socket));

  // Callback hooks rather than async ones: these run on every request, and a promise each is measurable.
  // Authentication runs here, first of all, before the body is read, parsed or validated: an anonymous or wrongly
  // authenticated request to anything but a public route is 401 whatever its id, query or body. A path no route
  // matches is not public either (config.auth is unset there), so the routes cannot be probed anonymously.
  app.decorateRequest('actor', null);
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    reply.header('x-content-type-options', 'nosniff');
    // Answers carry private keys, VNC passwords, tokens: none is kept by a browser or proxy cache.
    reply.header('cache-control', 'no-store');
    const config = req.routeOptions.config;
    const mode = config.auth ?? 'user';
    if (mode === 'public') return done(acceptable(req, config));
    const admit = (actor: Actor) => {
      req.actor = actor;
      const limited = limiter.check(actor.user, req.method);
      if (limited) return limited.then(() => acceptable(req, config));
      const refused = acceptable(req, config);
      if (refused) throw refused;
      return undefined;
    };
    try {
      // A client on a kept-alive connection, already known, costs neither a promise nor a hash.
      const known = auth.knownOnConnection(req);
      const later = known
        ? admit(known)
        : auth.authenticate(req, mode).then((actor) => {
            anonymous.authenticated(req.raw.socket);
            return admit(actor);
          });
      // (a callback hook must not return its promise: Fastify would go on twice)
      if (later)
        later.then(
          (refused) => done(refused ?? undefined),
          (e) => done(refuseUnread(req, reply, e)),
        );
      else done();
    } catch (e) {
      done(refuseUnread(req, reply, e));
    }
  });

  // The idle timeout is for clients that stall, not for the API's own work: once the whole request is in, nothing
  // moves on the socket while a long batch (100 RSA keys on a busy host) runs, and the client would lose its answer.
  // With a listener here Node leaves the choice to us, so the check costs nothing until a socket is idle that long.
  // `_httpMessage` is the response Node's HTTP server has on the socket (its own bookkeeping, not public API).
  app.server.on('timeout', (socket: Socket) => {
    const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    // Wholly received and not yet answered: keep it. Writing the answer refreshes the timer, so a client that then
    // stops reading (a download) or an idle keep-alive connection is still cut off.
    if (res && !res.headersSent && !res.writableEnded && res.req?.complete) return;
    socket.destroy();
  });

  // After authentication, so that a rule can name an account; one boolean check while no rule is set.
  faults.register(app as unknown as FastifyInstance);

  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    const answer = (e: ApiError) => reply.code(e.statusCode).headers(answerHeaders(req, e)).send(e.errors);
    if (err instanceof ApiError) return answer(err);
    const f = err as FastifyError;
    if (f.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return answer(errors.unsupportedMediaType(String(req.headers['content-type'])));
    // An id that cannot exist is not found, like any other missing object.
    if (f.validation && f.validationContext === 'params') return answer(errors.notFound());
    if (f.validation) {
      const v = f.validation[0]!;
      const point =
        (v.instancePath || '').replace(/^\//, '').replace(/\//g, '.') || (v.params as { missingProperty?: string } | undefined)?.missingProperty || null;
      return answer(errors.schema(`${f.validationContext ?? 'body'} ${v.message ?? 'is invalid'}`, point));
    }
    if (f.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || (err as { bodyTooLarge?: boolean }).bodyTooLarge) return answer(errors.bodyTooLarge(svc.config.bodyLimit));
    if (f.statusCode && f.statusCode < 500) return answer(errors.http(f.statusCode, err.message));
    if (svc.store.dialect.isConflict(err)) {
      // Still conflicting after the store's retries: the client may retry, as CloudSigma's 503 concurrency says.
      req.log.warn({ err }, 'transaction conflict');
      return answer(errors.concurrency());
    }
    req.log.error({ err }, 'internal error');
    return answer(errors.backend());
  });

  app.setNotFoundHandler((req, reply) => {
    const methods = table.methodsFor(req.url);
    if (req.method === 'OPTIONS' && methods.length) {
      const list = [...new Set(methods.filter((m) => m !== 'HEAD'))].join(',');
      return reply.code(200).header('allow', list).header('content-type', 'text/plain; charset=utf-8').send(list);
    }
    if (methods.length) {
      const e = errors.methodNotAllowed(methods);
      return reply.code(405).headers(e.headers).send(e.errors);
    }
    const e = errors.noRoute();
    return reply.code(404).headers(e.headers).send(e.errors);
  });

  app.get('/healthz', { config: { auth: 'public' }, schema: { hide: true } }, async () => {
    await svc.store.alive();
    return { status: 'ok' };
  });

  registerMetrics(app as unknown as FastifyInstance, svc);

  const routes = new Routes(app as unknown as FastifyInstance, table);
  await registerResources(routes, svc, auth);
  opensigmaRoutes(routes, svc, faults, requestLog);
  firewallCheckRoutes(routes, svc);
  attachNotifications(app as unknown as FastifyInstance, svc, [consoleBridge(app as unknown as FastifyInstance, svc)]);
  registerWebConsole(app as unknown as FastifyInstance);

  app.get(`${API}/openapi.json`, { config: { auth: 'public' }, schema: { hide: true } }, async () => app.swagger());

  return { app: app as unknown as FastifyInstance, faults, routes, auth };
}
