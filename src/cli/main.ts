import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { registerCompletion } from './completion.ts';
import { registerDrives } from './drives.ts';
import { ApiError, CliError, UsageError } from './errors.ts';
import { registerLogin } from './login.ts';
import { registerResources } from './resources.ts';
import { registerServe } from './serve.ts';
import { registerServers } from './servers.ts';
import { registerTokens } from './tokens.ts';
import { registerUsers } from './users.ts';
import { registerOperatorCommands } from './operator.ts';
import { registerStateCommands } from './state.ts';
import { openStore, overridesFrom, withSettings } from './settings.ts';
import { loadConfig } from '../config.ts';

function version(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

/** The whole command tree; each group lives in its own module. */
export function buildProgram(): Command {
  const program = new Command('opensigma')
    .description('opensigma, the CloudSigma API 2.0 cloud: its server, and a client of any API 2.0')
    .version(version(), '-V, --version', 'print the version')
    .showSuggestionAfterError(true)
    .exitOverride();
  program.addHelpText('after', '\nExample:\n  $ opensigma login http://127.0.0.1:8080 --user me@example.com && opensigma servers list');
  registerServe(program);
  registerUsers(program);
  registerTokens(program);
  registerLogin(program);
  registerServers(program);
  registerDrives(program);
  registerResources(program);
  registerOperatorCommands(program, { withSettings, openStore, config: (opts) => loadConfig(overridesFrom(opts)) });
  registerStateCommands(program);
  registerCompletion(program);
  return program;
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
