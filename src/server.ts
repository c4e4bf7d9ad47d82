import path from 'node:path';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.ts';
import { Store } from './store/index.ts';
import { verifyPassword } from './store/users.ts';
import { Services } from './services.ts';
import { buildApp } from './api/app.ts';
import { ComputeNode } from './compute/node.ts';
import { createHosts } from './hypervisor/index.ts';
import { randomPassword } from './domain/ids.ts';
import { contextReply } from './domain/context.ts';
import { BUILTIN_LIBRARY, loadLibrary } from './storage/library.ts';

export const libraryDirs = (config: Config): string[] =>
  [BUILTIN_LIBRARY, path.join(config.dataDir, 'library'), ...(config.libraryDir ? [config.libraryDir] : [])];
import { HostWatch } from './compute/liveness.ts';
import { createLogger } from './log.ts';
import { NetworkCommands } from './commands/networking.ts';

export interface Running {
  app: FastifyInstance;
  svc: Services;
  url: string;
  close(): Promise<void>;
}

/** Ensures the configured admin exists; on a fresh data dir without one, creates one and prints it once. */
async function ensureAdmin(svc: Services, log: pino.Logger): Promise<void> {
  const { adminEmail, adminPassword } = svc.config;
  if (adminEmail) {
    const existing = await svc.store.users.byEmail(adminEmail);
    // Several nodes may start at once: the one that loses the race to create the user sets the password instead.
    const created = !existing && (await svc.store.users.create(adminEmail, adminPassword ?? randomPassword(16)).then(() => true, () => false));
    // Only a real change: setting it ends the admin's cookie sessions and every node's cached credentials.
    const unchanged = existing && adminPassword && (await verifyPassword(adminPassword, existing.password_hash));
    if (!created && adminPassword && !unchanged) await svc.store.users.setPassword(adminEmail, adminPassword);
    return;
  }
  if ((await svc.store.users.count()) === 0) {
    const email = 'admin@localhost';
    const password = randomPassword(16);
    if (!(await svc.store.users.create(email, password).then(() => true, () => false))) return;
    log.info({ email }, 'created the first user');
    process.stdout.write(`\nopensigma: created user ${email} with password ${password}\n  (shown once; add users with: opensigma user add EMAIL --password PW)\n\n`);
  }
}

/** Starts an API node (and, unless role=api, the compute host of this machine). */
export async function serve(config: Config, opts: { logger?: boolean } = {}): Promise<Running> {
  const log = createLogger(config, opts.logger === false);
  const store = await Store.open(config.databaseUrl, config.dataDir);
  const svc = new Services(config, store, log);
  await svc.bus.start();
  await ensureAdmin(svc, log);
  await loadLibrary(store, config.storageDir, libraryDirs(config), svc.capabilities, log);
  // With SQLite this process is the only API node: whatever it was copying or receiving when it stopped is its to finish.
  if (store.dialect.name === 'sqlite') await svc.storage.recover();
  if (config.role === 'all') {
    const hosts = await createHosts(config, (server, request) => contextReply(svc, server, request), (msg, fields) => log.info({ ...fields, component: 'qemu' }, msg));
    svc.compute = new ComputeNode(config, store, svc.bus, hosts, log);
    await svc.compute.start();
  }
  const watch = new HostWatch(store, svc.bus, config.heartbeatTimeoutMs, log);
  watch.start();
  const { app } = await buildApp(svc, opts);
  const stopSweep = sweepSubscriptions(svc, log);
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
      await stopSweep();
      watch.stop();
      await svc.compute?.stop();
      await svc.storage.drain();
      await store.close();
    },
  };
}

/** Ended subscriptions expire (or renew) in the background, not only when their account next looks. */
function sweepSubscriptions(svc: Services, log: pino.Logger): () => Promise<void> {
  const net = new NetworkCommands(svc);
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (running) return; // a slow pass is still going
    running = net
      .sweepAll()
      .catch((err) => log.warn({ err }, 'subscription sweep'))
      .finally(() => (running = null));
  }, Math.max(100, svc.config.subscriptionSweepMs));
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
