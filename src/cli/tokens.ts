import type { Command } from 'commander';
import { example } from './client.ts';
import { openStore, withStoreSettings } from './settings.ts';

/** Server-side: API tokens, made on the database directly. */
export function registerTokens(program: Command): void {
  const token = program.command('token').description('manage API tokens (on the server, against its data)');
  const create = withStoreSettings(token.command('create <email>').description('print a new Bearer token for a user'));
  example(create, 'opensigma token create me@example.com --data /var/lib/opensigma');
  create.action(async (email: string, opts) => {
    const { store } = await openStore(opts);
    try {
      const u = await store.users.byEmail(email);
      if (!u) {
        console.error(`no user ${email}`);
        process.exitCode = 1;
        return;
      }
      const { token: t } = await store.users.issueToken(u.uuid, 'api', null);
      console.log(t);
    } finally {
      await store.close();
    }
  });
}
