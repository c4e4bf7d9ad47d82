import type { Command } from 'commander';
import type { Store } from '../store/index.ts';
import { example } from './client.ts';
import { UsageError } from './errors.ts';
import { openStore, withStoreSettings } from './settings.ts';

/** What the token commands borrow from the main program: its settings flags, its store, its usage errors. */
export interface CliKit {
  withSettings(cmd: Command): Command;
  openStore(opts: Record<string, unknown>): Promise<{ store: Store }>;
  usage(message: string): Error;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** `30d`, `12h`, `45m`, `90s`, `2w` in seconds. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (!m) return null;
  const seconds = Number(m[1]) * UNITS[m[2]!]!;
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : null;
}

/** `opensigma token create|list|revoke`: API tokens, managed from the machine while the server runs. */
export function registerTokenCommands(program: Command, kit: CliKit): void {
  const token = program.command('token').description('manage API tokens (Bearer) and sessions');

  example(
    kit.withSettings(token.command('create <email>').description('print a new Bearer token for a user')),
    'opensigma token create me@example.com --expires-in 30d --data /var/lib/opensigma',
  )
    .option('--expires-in <duration>', 'the token stops working after this long: 30d, 12h, 45m, 90s, 2w (default: never)')
    .action(async (email: string, opts) => {
      const ttl = opts.expiresIn === undefined ? null : parseDuration(String(opts.expiresIn));
      if (opts.expiresIn !== undefined && ttl === null) throw kit.usage(`--expires-in takes a duration such as 30d, 12h or 45m, not ${opts.expiresIn}`);
      await withUser(kit, opts, email, async (store, uuid) => {
        const { token: t } = await store.users.issueToken(uuid, 'api', ttl);
        console.log(t);
      });
    });

  const list = token.command('list <email>').description("list a user's tokens and sessions: id, kind, created, expires");
  example(kit.withSettings(list), 'opensigma token list me@example.com').action(async (email: string, opts) => {
    await withUser(kit, opts, email, async (store, uuid) => {
      const now = Date.now();
      for (const t of await store.users.listTokens(uuid)) {
        const expired = t.expires_at && Date.parse(t.expires_at) < now ? ' (expired)' : '';
        console.log(`${t.id}  ${t.kind.padEnd(7)}  created ${t.created_at}  expires ${t.expires_at ?? 'never'}${expired}`);
      }
    });
  });

  example(
    kit.withSettings(token.command('revoke [id]').description('revoke a token by the id `token list` shows; it stops working at once on every node')),
    'opensigma token revoke 3f2a9c1d0b7e',
    'opensigma token revoke --all me@example.com',
  )
    .option('--all <email>', 'revoke every token and session of this user instead')
    .action(async (id: string | undefined, opts) => {
      if (Boolean(id) === Boolean(opts.all)) throw kit.usage('give a token id or --all EMAIL');
      if (opts.all) {
        await withUser(kit, opts, String(opts.all), async (store, uuid) => {
          console.log(`revoked ${await store.users.revokeAllTokens(uuid)} tokens of ${String(opts.all).toLowerCase()}`);
        });
        return;
      }
      const { store } = await kit.openStore(opts);
      try {
        const r = await store.users.revokeTokenById(id!.toLowerCase());
        if (r === 'revoked') console.log(`revoked ${id}`);
        else {
          console.error(r === 'ambiguous' ? `${id} names several tokens: give more of its id` : `no token ${id}`);
          process.exitCode = 1;
        }
      } finally {
        await store.close();
      }
    });
}

async function withUser(kit: CliKit, opts: Record<string, unknown>, email: string, work: (store: Store, uuid: string) => Promise<void>): Promise<void> {
  const { store } = await kit.openStore(opts);
  try {
    const u = await store.users.byEmail(email);
    if (!u) {
      console.error(`no user ${email}`);
      process.exitCode = 1;
      return;
    }
    await work(store, u.uuid);
  } finally {
    await store.close();
  }
}

/** The token commands with the server-side settings of the other operator commands (--data, --database-url, --create). */
export function registerTokens(program: Command): void {
  registerTokenCommands(program, { withSettings: withStoreSettings, openStore, usage: (message) => new UsageError(message) });
}
