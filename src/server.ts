import type { FastifyInstance } from 'fastify';
import type { Config } from './config.ts';
import type { Services } from './services.ts';
import { buildApp } from './api/app.ts';
import { buildCore } from './core.ts';

export interface Running {
  app: FastifyInstance;
  svc: Services;
  url: string;
  close(): Promise<void>;
}

/** Starts an API node (and, unless role=api, the compute host of this machine). */
export async function serve(config: Config, opts: { logger?: boolean } = {}): Promise<Running> {
  const core = await buildCore(config, { api: true, compute: config.role === 'all' }, opts);
  const { svc, log, store } = core;
  const { app } = await buildApp(svc, opts);
  await app.listen({ host: config.listenHost, port: config.listenPort });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listenPort;
  const url = `${config.tlsCert ? 'https' : 'http'}://${config.listenHost.includes(':') ? `[${config.listenHost}]` : config.listenHost}:${port}`;
  log.info({ url, driver: config.driver, database: store.dialect.name }, 'opensigma is serving');
  return {
    app,
    svc,
    url,
    async close() {
      await app.close();
      await core.close();
    },
  };
}
