import type { Command } from 'commander';
import { example } from './client.ts';
import { UsageError } from './errors.ts';
import { firstLineOfStdin } from './login.ts';
import { openStore, withStoreSettings } from './settings.ts';

/** --password PW, or --password-stdin, which keeps the password out of the process list and the shell's history. */
function withPassword(cmd: Command): Command {
  return cmd.option('--password <pw>', 'the password').option('--password-stdin', 'read the password from standard input (its first line)');
}

async function passwordOf(opts: { password?: string; passwordStdin?: boolean }): Promise<string> {
  if (opts.password !== undefined && opts.passwordStdin) throw new UsageError('give --password or --password-stdin, not both');
  if (opts.passwordStdin) return firstLineOfStdin();
  if (opts.password === undefined) throw new UsageError('a password is needed: --password PW or --password-stdin');
  return opts.password;
}

/** Server-side: works on the database directly, also while the server runs. */
export function registerUsers(program: Command): void {
  const user = program.command('user').description('manage users (on the server, against its data)');
  const add = withPassword(withStoreSettings(user.command('add <email>').description('create a user (works while the server runs)')));
  example(add, 'printf \'%s\\n\' "$PW" | opensigma user add me@example.com --password-stdin --data /var/lib/opensigma');
  add.action(async (email: string, opts) => {
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
  });

  const setPw = withPassword(
    withStoreSettings(user.command('set-password <email>').description("change a user's password (the old one stops working at once on every node)")),
  );
  example(setPw, 'opensigma user set-password me@example.com --password-stdin < new-password.txt');
  setPw.action(async (email: string, opts) => {
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
}
