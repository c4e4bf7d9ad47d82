import { createRequire } from 'node:module';
import { Command, CommanderError, Help } from 'commander';
import { registerCompletion } from './completion.ts';
import { registerDrives } from './drives.ts';
import { ApiError, CliError, UsageError } from './errors.ts';
import { registerLogin } from './login.ts';
import { registerResources } from './resources.ts';
import { registerServe } from './serve.ts';
import { registerServers } from './servers.ts';
import { registerTokens } from './tokens.ts';
import { registerTestCloud } from './testcloud.ts';
import { registerUsers } from './users.ts';
import { registerOperatorCommands } from './operator.ts';
import { registerStateCommands } from './state.ts';
import { openStore, overridesFrom, withSettings, withStoreSettings } from './settings.ts';
import { loadConfig } from '../config.ts';
import { seedRandom } from '../domain/random.ts';

function version(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

/** The whole command tree; each group lives in its own module. */
export function buildProgram(): Command {
  // The client draws too (a new server's VNC password): a seeded fixture run records the same requests.
  seedRandom(process.env.OPENSIGMA_SEED || null);
  const program = new Command('opensigma')
    .description('opensigma, the CloudSigma API 2.0 cloud: its server, and a client of any API 2.0')
    .version(version(), '-V, --version', 'print the version')
    .showSuggestionAfterError(true)
    .exitOverride();
  registerServe(program);
  registerUsers(program);
  registerTokens(program);
  registerLogin(program);
  registerServers(program);
  registerDrives(program);
  registerResources(program);
  registerTestCloud(program);
  // hosts and backup need only the node's data; doctor checks every setting, so it takes them all.
  registerOperatorCommands(program, {
    withSettings: withStoreSettings,
    withAllSettings: withSettings,
    openStore,
    config: (opts) => loadConfig(overridesFrom(opts)),
  });
  registerStateCommands(program);
  registerCompletion(program);
  // Set last, so that only the top level lists its commands by name and group; each command keeps its own help.
  program.configureHelp({ formatHelp: (cmd, helper) => (cmd === program ? overview(program) : Help.prototype.formatHelp.call(helper, cmd, helper)) });
  return program;
}

/** Commands that run a cloud on its own machine; the rest are clients of any API 2.0 endpoint. */
const OPERATOR = new Set(['serve', 'agent', 'migrate', 'user', 'token', 'hosts', 'doctor', 'backup']);
const TEST_CLOUD = new Set(['state', 'faults', 'requests']);

/** The top-level help: every command by name, grouped, in a screenful (the list of one-line descriptions was 43 lines). */
function overview(program: Command): string {
  const wrap = (names: string[]) => {
    const lines: string[] = [];
    let line = ' ';
    for (const n of names) {
      if (line.length + n.length + 2 > 100) {
        lines.push(line);
        line = ' ';
      }
      line += ` ${n},`;
    }
    lines.push(line.replace(/,$/, ''));
    return lines.join('\n');
  };
  const names = program.commands.map((c) => c.name()).filter((n) => n !== 'help');
  const group = (pick: (n: string) => boolean) => wrap(names.filter(pick));
  const parts = [
    `Usage: opensigma [options] COMMAND`,
    '',
    program.description(),
    '',
    'Run a cloud (on its machine, against its data):',
    group((n) => OPERATOR.has(n)),
    'Use a cloud (any CloudSigma API 2.0 endpoint, through a profile from `opensigma login`):',
    group((n) => !OPERATOR.has(n) && !TEST_CLOUD.has(n) && n !== 'completion'),
  ];
  if (names.some((n) => TEST_CLOUD.has(n)))
    parts.push(
      'Control opensigma as a test cloud (its administrator):',
      group((n) => TEST_CLOUD.has(n)),
    );
  parts.push(
    'Shell:',
    '  completion',
    '',
    'Options:',
    '  -V, --version  print the version',
    "  -h, --help     this help; `opensigma COMMAND --help` shows a command's options and an example",
    '',
    'Example:',
    '  $ opensigma login http://127.0.0.1:8080 --user me@example.com && opensigma servers list',
    '',
  );
  return parts.join('\n');
}

/**
 * Exit status: 0 done; 1 the API (or the network, or a wait) said no, with the API's error_message and error_point;
 * 2 the command line was wrong.
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has printed its message (or the help, or the version) already.
      process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof UsageError) {
      console.error(`opensigma: ${e.message}`);
      process.exitCode = 2;
      return;
    }
    if (e instanceof ApiError || e instanceof CliError) {
      console.error(`opensigma: ${e.message}`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}
