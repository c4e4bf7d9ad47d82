import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfig, SETTINGS } from '../config.ts';
import { UsageError } from './errors.ts';

/** Collects setting flags into the same names as the environment variables. */
export function overridesFrom(opts: Record<string, unknown>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const s of SETTINGS) {
    const key = s.flag
      .split(' ')[0]!
      .replace(/^--/, '')
      .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (opts[key] !== undefined) out[s.env] = String(opts[key]);
  }
  return out;
}

/** The settings serve's and agent's --help shows; --help-all shows every one. */
const COMMON = ['LISTEN', 'DATA', 'DATABASE_URL', 'DRIVER', 'ROLE', 'HOST_NAME', 'ADMIN_EMAIL', 'ADMIN_PASSWORD', 'LOG_LEVEL'].map((s) => `OPENSIGMA_${s}`);

/**
 * The server's settings as flags: all of them for serve and agent (their help shows the common ones, --help-all the
 * rest), `only` for the commands that just open the store.
 */
export function withSettings(cmd: Command, only?: string[]): Command {
  const all = process.argv.includes('--help-all');
  for (const s of SETTINGS) {
    if (only && !only.includes(s.env)) continue;
    const o = new Option(s.flag, `${s.help} [${s.env}]`);
    cmd.addOption(only || all || COMMON.includes(s.env) ? o : o.hideHelp());
  }
  if (!only) {
    cmd.addOption(new Option('--help-all', 'show all the settings').hideHelp(all));
    cmd.addHelpText('after', all ? '' : `\n${SETTINGS.length - COMMON.length} more settings: --help-all, or the README. Each is also an environment variable.`);
    cmd.on('option:help-all', () => cmd.help());
  }
  return cmd;
}

export const STORE_SETTINGS = ['OPENSIGMA_DATA', 'OPENSIGMA_DATABASE_URL'];

/** user and token: --data, --database-url and --create. */
export function withStoreSettings(cmd: Command): Command {
  return withSettings(cmd, STORE_SETTINGS).option('--create', 'make a new database if the data directory holds none');
}

/**
 * Opens the store a server uses. A data directory without an opensigma database is refused unless --create: a typo
 * in --data would otherwise make a new, empty database and the user would land in it.
 */
export async function openStore(opts: Record<string, unknown>) {
  const config = loadConfig(overridesFrom(opts));
  if (!config.databaseUrl && !opts.create && !fs.existsSync(path.join(config.dataDir, 'opensigma.sqlite')))
    throw new UsageError(`${config.dataDir} holds no opensigma database (check --data or OPENSIGMA_DATA; --create makes a new one)`);
  const { Store } = await import('../store/index.ts');
  return { config, store: await Store.open(config.databaseUrl, config.dataDir) };
}
