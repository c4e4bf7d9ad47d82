import crypto from 'node:crypto';
import fs from 'node:fs';
import Fastify, { LogController, type FastifyInstance, type FastifyError } from 'fastify';
import compress from '@fastify/compress';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Services } from '../services.ts';
import { ApiError, errors } from '../errors.ts';
import { Authenticator } from './auth.ts';
import type { Actor } from '../commands/servers.ts';
import { RateLimiter } from './rate-limit.ts';
import { readLimited, RouteTable, Routes } from './http.ts';
import { API } from '../domain/refs.ts';
import { registerResources } from './resources.ts';
import { attachNotifications } from './notifications.ts';
import { registerMetrics } from './metrics.ts';
import { registerWebConsole } from './web.ts';
import { consoleBridge } from './console-bridge.ts';
import { Faults } from './faults.ts';
import { RequestLog } from './request-log.ts';
import { accountUuid, opensigmaRoutes } from './opensigma.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** who is calling, set by the auth hook (null on public routes) */
    actor: Actor | null;
  }
  interface FastifyContextConfig {
    auth?: 'user' | 'public' | 'basic-only';
    /** the body is handed to the handler as a stream (drive uploads) */
    stream?: boolean;
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
  const app = Fastify({
    ...(tlsCert && tlsKey ? { https: { cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey) } } : {}),
    // The process's own logger, so request lines share its format (JSON or pretty) and destination.
    ...(opts.logger === false ? { logger: false } : { loggerInstance: svc.log }),
    bodyLimit: svc.config.bodyLimit,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : crypto.randomUUID();
    },
    // Log lines name it request_id, as the X-Request-Id header it comes from (operators grep for it across nodes).
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const table = new RouteTable();
  const auth = new Authenticator(svc);
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

  // Bodies: JSON, but an empty body is null (action calls send none), and a malformed one is the API's own 400.
  // Streaming routes (drive uploads) get the raw request stream instead, never held in memory.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (req, payload, done) => {
    const config = (req as any).routeOptions?.config;
    if (config?.stream) return done(null, payload);
    readLimited(payload, svc.config.bodyLimit).then(
      (body) => {
        if (config?.rawBody) return done(null, body);
        if (body.length === 0) return done(null, null);
        try {
          done(null, JSON.parse(body.toString('utf8')));
        } catch (e) {
          done(errors.badJson((e as Error).message) as unknown as Error, undefined);
        }
      },
      (e) => done(e as Error, undefined),
    );
  });

  // Callback hooks rather than async ones: these run on every request, and a promise each is measurable.
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    const accept = req.headers.accept;
    // ?format=json asks for JSON whatever Accept says, as the real API allows.
    if (accept && !/(application\/json|\*\/\*|application\/\*|text\/)/.test(accept) && !/[?&]format=json(&|$)/.test(req.url) && !req.routeOptions.config?.stream && req.url.startsWith(API))
      return done(errors.notAcceptable());
    done();
  });

  // Declared, so that setting it per request keeps the request objects' shape (and V8's fast paths) unchanged.
  app.decorateRequest('actor', null);
  // A client on a kept-alive connection, already known, costs neither a promise nor a hash.
  app.addHook('preHandler', (req, _reply, done) => {
    const mode = req.routeOptions.config?.auth ?? 'public';
    if (mode === 'public') return done();
    const admit = (actor: Actor) => {
      req.actor = actor;
      return limiter.check(actor.user, req.method);
    };
    try {
      const known = auth.knownOnConnection(req);
      const later = known ? admit(known) : auth.authenticate(req, mode).then(admit);
      // (a callback hook must not return its promise: Fastify would go on twice)
      if (later) later.then(() => done(), done);
      else done();
    } catch (e) {
      done(e as Error);
    }
  });

  // After authentication, so that a rule can name an account; one boolean check while no rule is set.
  faults.register(app as unknown as FastifyInstance);

  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      // A script's 401 (the web console says X-Requested-With) must not make the browser open its Basic-auth dialog.
      const headers = err.statusCode === 401 && req.headers['x-requested-with'] === 'XMLHttpRequest' ? {} : err.headers;
      return reply.code(err.statusCode).headers(headers).send(err.errors);
    }
    // An id that cannot exist is not found, like any other missing object.
    if ((err as FastifyError).validation && (err as FastifyError).validationContext === 'params') return reply.code(404).send(errors.notFound().errors);
    if ((err as FastifyError).validation) {
      const v = (err as FastifyError).validation![0]!;
      const point = (v.instancePath || '').replace(/^\//, '').replace(/\//g, '.') || (v.params as any)?.missingProperty || null;
      return reply.code(400).send([{ error_message: `${err.validationContext ?? 'body'} ${v.message ?? 'is invalid'}`, error_point: point, error_type: 'validation' }]);
    }
    if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE' || (err as any).bodyTooLarge) return reply.code(413).send(errors.bodyTooLarge(svc.config.bodyLimit).errors);
    if ((err as FastifyError).statusCode && (err as FastifyError).statusCode! < 500) {
      return reply.code((err as FastifyError).statusCode!).send([{ error_message: err.message, error_point: null, error_type: 'validation' }]);
    }
    if (svc.store.dialect.isConflict(err)) {
      // Still conflicting after the store's retries: the client may retry, as CloudSigma's 503 concurrency says.
      req.log.warn({ err }, 'transaction conflict');
      return reply.code(503).send(errors.concurrency().errors);
    }
    req.log.error({ err }, 'internal error');
    return reply.code(500).send(errors.backend().errors);
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
    return reply.code(404).send(errors.noRoute().errors);
  });

  app.get('/healthz', { config: { auth: 'public' }, schema: { hide: true } as any }, async () => {
    await svc.store.db.selectFrom('users').select('uuid').limit(1).execute();
    return { status: 'ok' };
  });

  registerMetrics(app as unknown as FastifyInstance, svc);

  const routes = new Routes(app as unknown as FastifyInstance, table);
  await registerResources(routes, svc, auth);
  opensigmaRoutes(routes, svc, faults, requestLog);
  attachNotifications(app as unknown as FastifyInstance, svc, [consoleBridge(app as unknown as FastifyInstance, svc)]);
  registerWebConsole(app as unknown as FastifyInstance);

  app.get(`${API}/openapi.json`, { config: { auth: 'public' }, schema: { hide: true } as any }, async () => app.swagger());

  return { app: app as unknown as FastifyInstance, faults, routes, auth };
}

