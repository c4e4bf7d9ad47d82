import { Command } from 'commander';
import { loadConfig, SETTINGS } from '../config.ts';
import { Store } from '../store/index.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { openDialect } from '../store/dialect/index.ts';
import { registerTokenCommands } from './tokens.ts';

/** Collects `serve` flags into the same names as the environment variables. */
function overridesFrom(opts: Record<string, unknown>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const s of SETTINGS) {
    const key = s.flag.split(' ')[0]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (opts[key] !== undefined) out[s.env] = String(opts[key]);
  }
  return out;
}

function withSettings(cmd: Command): Command {
  for (const s of SETTINGS) cmd.option(s.flag, `${s.help} [${s.env}]`);
  return cmd;
}

/** A mistake in the command line: said in one line, without a stack trace. */
class UsageError extends Error {}

/** --password PW, or --password-stdin, which keeps the password out of the process list and the shell's history. */
function withPassword(cmd: Command): Command {
  return cmd.option('--password <pw>', 'the password').option('--password-stdin', 'read the password from standard input (its first line)');
}

async function passwordOf(opts: { password?: string; passwordStdin?: boolean }): Promise<string> {
  if (opts.password !== undefined && opts.passwordStdin) throw new UsageError('give --password or --password-stdin, not both');
  if (!opts.passwordStdin) {
    if (opts.password === undefined) throw new UsageError('a password is needed: --password PW or --password-stdin');
    return opts.password;
  }
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const password = input.split(/\r?\n/)[0]!;
  if (!password) throw new UsageError('standard input held no password');
  return password;
}

async function openStore(opts: Record<string, unknown>) {
  const config = loadConfig(overridesFrom(opts));
  return { config, store: await Store.open(config.databaseUrl, config.dataDir) };
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('opensigma').description('A self-hostable cloud that speaks the CloudSigma REST API 2.0');

  withSettings(program.command('serve').description('serve the API (and run this machine as a compute host unless --role api)')).action(async (opts) => {
    const { serve } = await import('../server.ts');
    const running = await serve(loadConfig(overridesFrom(opts)));
    const stop = async () => {
      await running.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

  withSettings(program.command('agent').description('run this machine as a compute host only')).action(async (opts) => {
    const { runAgent } = await import('../compute/agent.ts');
    let agent: Awaited<ReturnType<typeof runAgent>>;
    try {
      agent = await runAgent(loadConfig(overridesFrom(opts)));
    } catch (e) {
      console.error(`opensigma agent: ${(e as Error).message}`);
      process.exit(2);
    }
    const stop = async () => {
      await agent.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

  withSettings(program.command('migrate').description('apply database migrations and exit')).action(async (opts) => {
    // Not through Store.open, which would migrate first and leave nothing to report.
    const config = loadConfig(overridesFrom(opts));
    const dialect = await openDialect(config.databaseUrl, config.dataDir);
    try {
      const applied = await migrateToLatest(dialect);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    } finally {
      await dialect.close();
    }
  });

  const user = program.command('user').description('manage users');
  withPassword(withSettings(user.command('add <email>').description('create a user (works while the server runs)'))).action(
    async (email: string, opts) => {
      const password = await passwordOf(opts);
      const { store } = await openStore(opts);
      try {
        if (await store.users.byEmail(email)) {
          console.error(`user ${email} exists already (change its password with: opensigma user set-password ${email} --password-stdin)`);
          process.exitCode = 1;
        } else {
          const u = await store.users.create(email, password);
          console.log(`created user ${u.email} (${u.uuid})`);
        }
      } finally {
        await store.close();
      }
    },
  );

  withPassword(
    withSettings(
      user.command('set-password <email>').description("change a user's password (works while the server runs: the old one stops working at once on every node)"),
    ),
  ).action(async (email: string, opts) => {
    const password = await passwordOf(opts);
    const { store } = await openStore(opts);
    try {
      if (await store.users.setPassword(email, password)) console.log(`changed the password of ${email.toLowerCase()}`);
      else {
        console.error(`no user ${email}`);
        process.exitCode = 1;
      }
    } finally {
      await store.close();
    }
  });

  registerTokenCommands(program, { withSettings, openStore, usage: (message) => new UsageError(message) });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`opensigma: ${e.message}`);
    process.exitCode = 2;
  }
}
