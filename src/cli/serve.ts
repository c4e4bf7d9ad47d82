import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { randomBytes, seedRandom } from '../domain/random.ts';
import { example } from './client.ts';
import { overridesFrom, STORE_SETTINGS, withSettings } from './settings.ts';

/** Ends a long-running process cleanly on Ctrl-C and on a service manager's stop. */
function stopOn(close: () => Promise<void>): void {
  const stop = async () => {
    await close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export function registerServe(program: Command): void {
  const serveCmd = withSettings(program.command('serve').description('serve the API, and be a compute host too'));
  serveCmd.option('--ephemeral', 'a throw-away cloud on a free port; prints {url, user, password, token}; gone at exit');
  example(serveCmd, 'opensigma serve --listen 0.0.0.0:8080 --data /var/lib/opensigma', 'opensigma serve --ephemeral');
  serveCmd.action(async (opts: Record<string, unknown>) => {
    const { serve } = await import('../server.ts');
    if (!opts.ephemeral) {
      const running = await serve(loadConfig(overridesFrom(opts)));
      stopOn(() => running.close());
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-ephemeral-'));
    const remove = () => fs.rmSync(dir, { recursive: true, force: true });
    process.once('exit', remove);
    const user = (opts.adminEmail as string | undefined) ?? 'admin@localhost';
    // Seeded before the password is drawn, so that a seeded run prints the same line every time.
    seedRandom(loadConfig(overridesFrom(opts)).seed);
    const password = (opts.adminPassword as string | undefined) ?? randomBytes(12, 'password').toString('base64url');
    const config = loadConfig({
      OPENSIGMA_LISTEN: '127.0.0.1:0',
      OPENSIGMA_LOG_LEVEL: 'warn',
      ...overridesFrom(opts),
      OPENSIGMA_DATA: dir,
      // Its own SQLite in the temporary directory, even when the environment names a shared PostgreSQL.
      OPENSIGMA_DATABASE_URL: '',
      OPENSIGMA_ADMIN_EMAIL: user,
      OPENSIGMA_ADMIN_PASSWORD: password,
    });
    const running = await serve(config);
    const me = (await running.svc.store.users.byEmail(user))!;
    const { token } = await running.svc.store.users.issueToken(me.uuid, 'api', null);
    process.stdout.write(JSON.stringify({ url: `${running.url}/api/2.0`, user, password, token, data: dir }) + '\n');
    stopOn(async () => {
      await running.close();
      remove();
    });
  });

  const agent = withSettings(program.command('agent').description('run this machine as a compute host only'));
  example(agent, 'opensigma agent --database-url postgres://opensigma@db/opensigma --host-name node2');
  agent.action(async (opts: Record<string, unknown>) => {
    const { runAgent } = await import('../agent.ts');
    let running: Awaited<ReturnType<typeof runAgent>>;
    try {
      running = await runAgent(loadConfig(overridesFrom(opts)));
    } catch (e) {
      console.error(`opensigma agent: ${(e as Error).message}`);
      process.exit(2);
    }
    stopOn(() => running.close());
  });

  const migrate = withSettings(program.command('migrate').description('apply database migrations and exit'), STORE_SETTINGS);
  example(migrate, 'opensigma migrate --database-url postgres://opensigma@db/opensigma');
  migrate.action(async (opts: Record<string, unknown>) => {
    // Not through Store.open, which would migrate first and leave nothing to report.
    const config = loadConfig(overridesFrom(opts));
    const { openDialect } = await import('../store/dialect/index.ts');
    const { migrateToLatest } = await import('../store/migrate.ts');
    const dialect = await openDialect(config.databaseUrl, config.dataDir);
    try {
      const applied = await migrateToLatest(dialect);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    } finally {
      await dialect.close();
    }
  });
}
