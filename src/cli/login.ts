import type { Command } from 'commander';
import { example } from './client.ts';
import { CliError, UsageError } from './errors.ts';
import { Api } from './http.ts';
import { configPath, normaliseUrl, removeProfile, saveProfile, type Profile } from './profiles.ts';

/** The first line of standard input: the password kept out of the process list and the shell's history. */
export async function firstLineOfStdin(): Promise<string> {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const line = input.split(/\r?\n/)[0]!;
  if (!line) throw new UsageError('standard input held no password');
  return line;
}

/** Asks on the terminal without echoing what is typed. */
async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new UsageError('no terminal to ask the password on: give --password-stdin (or --token)');
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  let typed = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            return resolve(typed);
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            return reject(new UsageError('cancelled'));
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

export function registerLogin(program: Command): void {
  const login = program
    .command('login <url>')
    .description('log in to an API: check and keep credentials as a profile')
    .option('--user <email>', 'the account to log in as')
    .option('--password-stdin', 'read the password from standard input (its first line) instead of asking')
    .option('--token <token>', 'log in with an API token (opensigma token create) instead of a password')
    .option('--name <profile>', 'name of the profile', 'default');
  example(login, 'opensigma login http://127.0.0.1:8080 --user me@example.com', 'opensigma login https://cloud.example.com --token "$TOKEN" --name prod');
  login.action(async (url: string, opts: { user?: string; passwordStdin?: boolean; token?: string; name: string }) => {
    const profile: Profile = { url: normaliseUrl(url) };
    if (opts.token !== undefined) {
      if (opts.user !== undefined || opts.passwordStdin) throw new UsageError('give --token, or --user with a password, not both');
      if (!opts.token) throw new UsageError('--token is empty');
      profile.token = opts.token;
    } else {
      if (!opts.user) throw new UsageError('give --user EMAIL (or --token)');
      profile.user = opts.user;
      profile.password = opts.passwordStdin ? await firstLineOfStdin() : await promptHidden(`Password for ${opts.user}: `);
    }
    let me: { email?: string };
    try {
      me = await new Api(profile).call('GET', '/profile/');
    } catch (e) {
      throw new CliError(`login to ${profile.url} failed: ${(e as Error).message}`);
    }
    saveProfile(opts.name, profile);
    console.log(`logged in to ${profile.url} as ${me?.email ?? opts.user ?? 'token'} (profile ${opts.name}, in ${configPath()})`);
  });

  const logout = program.command('logout [profile]').description('forget a profile and its credentials');
  example(logout, 'opensigma logout prod');
  logout.action(async (name: string | undefined) => {
    const n = name ?? process.env.OPENSIGMA_PROFILE ?? 'default';
    if (!removeProfile(n)) throw new CliError(`no profile ${n} in ${configPath()}`);
    console.log(`removed profile ${n}`);
  });
}
