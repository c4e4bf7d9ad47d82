import fs from 'node:fs';
import type { Command } from 'commander';
import { CliError, UsageError } from './errors.ts';
import { Api } from './http.ts';
import { resolveProfile } from './profiles.ts';

/** Every command that talks to an API takes --profile. */
export function withProfile(cmd: Command): Command {
  return cmd.option('--profile <name>', 'the login profile to use (default: $OPENSIGMA_PROFILE, else default)');
}

export function apiOf(opts: { profile?: string }): Api {
  return new Api(resolveProfile(opts.profile));
}

/** An example at the end of a command's help. */
export function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}`);
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A uuid as it is; a name becomes the uuid of the one object of that name. None, or several, is an error. */
export async function resolve(api: Api, path: string, noun: string, ref: string): Promise<{ uuid: string; name: string }> {
  if (UUID.test(ref)) return { uuid: ref.toLowerCase(), name: ref };
  // The API's name filter takes a comma as OR: a literal one is escaped.
  // Short lists (drives) carry no name: the detailed one, cut to the two fields.
  const query = { name: ref.replace(/,/g, '\\,'), fields: 'uuid,name' };
  const found = (await api.list<{ uuid: string; name: string }>(`/${path}/detail/`, query)).filter((o) => o.name === ref);
  if (found.length === 1) return { uuid: found[0]!.uuid, name: ref };
  if (!found.length) throw new CliError(`no ${noun} named ${ref}`);
  throw new CliError(`${found.length} ${noun}s are named ${ref}; give one of their uuids:\n${found.map((o) => `  ${o.uuid}`).join('\n')}`);
}

/** 1073741824, 1G, 512M, 1.5GiB, 10T: in bytes (binary units, as CloudSigma's sizes are). */
export function parseSize(s: string, what = 'size'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`${what} must be bytes or a number with K, M, G or T (1G = 1024^3), not ${s}`);
  const pow = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.round(Number(m[1]) * 1024 ** pow);
}

export function parseInteger(s: string, what: string): number {
  if (!/^\d+$/.test(s)) throw new UsageError(`${what} must be a whole number, not ${s}`);
  return Number(s);
}

/** --from FILE or - (standard input): a JSON object, or the API's {"objects": [one]}. */
export async function readDefinition(from: string): Promise<Record<string, unknown>> {
  let text: string;
  if (from === '-') {
    text = '';
    for await (const chunk of process.stdin) text += chunk;
  } else {
    try {
      text = fs.readFileSync(from, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${from === '-' ? 'standard input' : from} is not JSON: ${(e as Error).message}`);
  }
  if (v && typeof v === 'object' && !Array.isArray(v) && Array.isArray((v as { objects?: unknown }).objects)) {
    const objs = (v as { objects: unknown[] }).objects;
    if (objs.length !== 1) throw new UsageError(`${from} holds ${objs.length} objects; give one`);
    v = objs[0];
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${from} must hold one JSON object`);
  return v as Record<string, unknown>;
}

/** --set a.b=VALUE: VALUE as JSON when it parses (numbers, true, null, lists), else as a string. */
export function applySets(obj: Record<string, unknown>, sets: string[] = []): Record<string, unknown> {
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set takes FIELD=VALUE, not ${s}`);
    const keys = s.slice(0, eq).split('.');
    const raw = s.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    let at = obj;
    for (const k of keys.slice(0, -1)) {
      if (!at[k] || typeof at[k] !== 'object') at[k] = {};
      at = at[k] as Record<string, unknown>;
    }
    at[keys.at(-1)!] = value;
  }
  return obj;
}

export const collect = (v: string, prev: string[] = []) => [...prev, v];
