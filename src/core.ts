import path from 'node:path';
import pino from 'pino';
import type { Config } from './config.ts';
import { Store } from './store/index.ts';
import { verifyPassword } from './store/users.ts';
import { Services } from './services.ts';
import { ComputeNode } from './compute/node.ts';
import { HostWatch } from './compute/liveness.ts';
import { createHosts } from './hypervisor/index.ts';
import { randomPassword } from './domain/ids.ts';
import { seedRandom } from './domain/random.ts';
import { contextReply } from './commands/server-context.ts';
import { BUILTIN_LIBRARY, loadLibrary } from './storage/library.ts';
import { nicRules } from './commands/nic-rules.ts';
import { SubscriptionSweep } from './commands/subscription-sweep.ts';
import { createLogger } from './log.ts';

export const libraryDirs = (config: Config): string[] => [
  BUILTIN_LIBRARY,
  path.join(config.dataDir, 'library'),
  ...(config.libraryDir ? [config.libraryDir] : []),
];

/** What one process runs: the API's side (an API node) and the compute side (an agent), or both. */
export interface CoreRoles {
  /** serves the API: owns the first user, the library, unfinished transfers and the subscription sweep */
  api: boolean;
  /** runs this machine's compute hosts */
  compute: boolean;
}

/** Everything a process runs, built once, in one place, for `serve`, `agent` and tests alike. */
export interface Core {
  readonly config: Config;
  readonly log: pino.Logger;
  readonly store: Store;
  readonly svc: Services;
  readonly compute: ComputeNode | null;
  close(): Promise<void>;
}

/**
 * The composition root. The business rules every process needs (the NIC rules of server definitions, the audit
 * log of what happens) are wired here, not where HTTP routes are registered, so an agent without an API has them.
 */
export async function buildCore(config: Config, roles: CoreRoles, opts: { logger?: boolean } = {}): Promise<Core> {
  seedRandom(config.seed);
  const log = createLogger(config, opts.logger === false);
  const store = await Store.open(config.databaseUrl, config.dataDir);
  store.enforceQuotas(config.quotas);
  const svc = new Services(config, store, log);
  svc.serverReferenceChecks.push(nicRules(svc));
  const stopAudit = svc.audit.start();
  await svc.bus.start();
  let stopSweep: () => Promise<void> = async () => {};
  if (roles.api) {
    await ensureAdmin(svc, log);
    await loadLibrary(store, config.storageDir, libraryDirs(config), svc.capabilities, log);
    // With SQLite this process is the only API node: whatever it was copying or receiving when it stopped is its to finish.
    if (store.dialect.name === 'sqlite') await svc.storage.recover();
    stopSweep = new SubscriptionSweep(svc).start(config.subscriptionSweepMs, log);
  }
  let compute: ComputeNode | null = null;
  if (roles.compute) {
    const hosts = await createHosts(
      config,
      (server, request) => contextReply(svc, server, request),
      (msg, fields) => log.info({ ...fields, component: 'qemu' }, msg),
    );
    compute = new ComputeNode(config, store, svc.bus, hosts, log);
    svc.compute = compute;
    try {
      await compute.start();
    } catch (e) {
      await compute.stop().catch(() => {});
      await stopSweep();
      await store.close();
      throw e;
    }
  }
  // Every process watches the hosts, so dead ones are noticed while any one of them runs.
  const watch = new HostWatch(store, svc.bus, config.heartbeatTimeoutMs, log);
  watch.start();
  return {
    config,
    log,
    store,
    svc,
    compute,
    async close() {
      await stopSweep();
      watch.stop();
      await compute?.stop();
      await svc.storage.drain();
      await svc.audit.settled();
      stopAudit();
      await store.close();
    },
  };
}

/** Ensures the configured admin exists; on a fresh data dir without one, creates one and prints it once. */
async function ensureAdmin(svc: Services, log: pino.Logger): Promise<void> {
  const { adminEmail, adminPassword } = svc.config;
  if (adminEmail) {
    const existing = await svc.store.users.byEmail(adminEmail);
    // Several nodes may start at once: the one that loses the race to create the user sets the password instead.
    const created =
      !existing &&
      (await svc.store.users.create(adminEmail, adminPassword ?? randomPassword(16)).then(
        () => true,
        () => false,
      ));
    // Only a real change: setting it ends the admin's cookie sessions and every node's cached credentials.
    const unchanged = existing && adminPassword && (await verifyPassword(adminPassword, existing.password_hash));
    if (!created && adminPassword && !unchanged) await svc.store.users.setPassword(adminEmail, adminPassword);
    return;
  }
  if ((await svc.store.users.count()) === 0) {
    const email = 'admin@localhost';
    const password = randomPassword(16);
    if (
      !(await svc.store.users.create(email, password).then(
        () => true,
        () => false,
      ))
    )
      return;
    log.info({ email }, 'created the first user');
    process.stdout.write(
      `\nopensigma: created user ${email} with password ${password}\n  (shown once; add users with: opensigma user add EMAIL --password PW)\n\n`,
    );
  }
}
