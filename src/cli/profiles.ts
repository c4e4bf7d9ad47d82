import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from './errors.ts';

/** Where a client talks to and as whom: Basic credentials or a Bearer token. */
export interface Profile {
  url: string;
  user?: string;
  password?: string;
  token?: string;
}

interface ConfigFile {
  profiles: Record<string, Profile>;
}

/** $XDG_CONFIG_HOME/opensigma/config.json, else ~/.config/opensigma/config.json. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  return path.join(base, 'opensigma', 'config.json');
}

/** Uploads in progress, so that running the same upload again resumes it: $XDG_STATE_HOME/opensigma/uploads.json. */
export function statePath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'opensigma', name);
}

export function readJsonFile<T>(file: string, fallback: T): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new UsageError(`${file} is not valid JSON: fix or remove it`);
  }
}

/** Written aside and renamed, mode 0600 from the start: the file holds passwords and tokens. */
export function writeJsonFile(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export function readProfiles(): Record<string, Profile> {
  return readJsonFile<ConfigFile>(configPath(), { profiles: {} }).profiles ?? {};
}

export function saveProfile(name: string, p: Profile): void {
  const cfg = readJsonFile<ConfigFile>(configPath(), { profiles: {} });
  cfg.profiles = { ...(cfg.profiles ?? {}), [name]: p };
  writeJsonFile(configPath(), cfg);
}

export function removeProfile(name: string): boolean {
  const cfg = readJsonFile<ConfigFile>(configPath(), { profiles: {} });
  if (!cfg.profiles?.[name]) return false;
  delete cfg.profiles[name];
  writeJsonFile(configPath(), cfg);
  return true;
}

/**
 * The profile a command uses: --profile NAME; else OPENSIGMA_URL with OPENSIGMA_USER and OPENSIGMA_PASSWORD or
 * OPENSIGMA_TOKEN (nothing on disk: for scripts and CI); else OPENSIGMA_PROFILE; else the one named `default`.
 */
export function resolveProfile(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Profile {
  if (!flag && env.OPENSIGMA_URL) {
    const p: Profile = { url: normaliseUrl(env.OPENSIGMA_URL) };
    if (env.OPENSIGMA_TOKEN) p.token = env.OPENSIGMA_TOKEN;
    else if (env.OPENSIGMA_USER && env.OPENSIGMA_PASSWORD !== undefined) Object.assign(p, { user: env.OPENSIGMA_USER, password: env.OPENSIGMA_PASSWORD });
    else throw new UsageError('OPENSIGMA_URL is set: set OPENSIGMA_TOKEN, or OPENSIGMA_USER and OPENSIGMA_PASSWORD, as well');
    return p;
  }
  const name = flag || env.OPENSIGMA_PROFILE || 'default';
  const p = readProfiles()[name];
  if (!p) {
    if (name === 'default') throw new UsageError('not logged in: run opensigma login URL (or set OPENSIGMA_URL and its credentials)');
    throw new UsageError(`no profile ${name} in ${configPath()} (opensigma login URL --name ${name} makes it)`);
  }
  return p;
}

/** Accepts http://host:port, http://host:port/ or the full http://host:port/api/2.0/; keeps the API base. */
export function normaliseUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`not a URL: ${raw} (for example http://127.0.0.1:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`the URL must be http:// or https://, not ${raw}`);
  let p = u.pathname.replace(/\/+$/, '');
  if (!/\/api\/2\.0$/.test(p)) p += '/api/2.0';
  return `${u.origin}${p}`;
}
