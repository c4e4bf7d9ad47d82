import { errors } from '../errors.ts';

/** Integers arrive as JSON numbers or numeric strings ("1024000000"); both are accepted. */
export function readInt(v: unknown, point: string, range: { min?: number; max?: number } = {}): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\s*-?\d+(\.0+)?\s*$/.test(v)) n = Number(v);
  else throw errors.invalid(point, `${point} must be an integer`);
  if (!Number.isSafeInteger(n)) throw errors.invalid(point, `${point} must be an integer`);
  if (range.min !== undefined && n < range.min) throw errors.invalid(point, `${point} must be at least ${range.min}`);
  if (range.max !== undefined && n > range.max) throw errors.invalid(point, `${point} must be at most ${range.max}`);
  return n;
}

export function readBool(v: unknown, point: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'True') return true;
  if (v === 'false' || v === 'False') return false;
  throw errors.invalid(point, `${point} must be true or false`);
}

export function readString(v: unknown, point: string, opts: { nonEmpty?: boolean; max?: number } = {}): string {
  if (typeof v === 'number') v = String(v);
  if (typeof v !== 'string') throw errors.invalid(point, `${point} must be a string`);
  // The real API ends strings at a NUL.
  const s = v.includes('\0') ? v.slice(0, v.indexOf('\0')) : v;
  if (opts.nonEmpty && s.length === 0) throw errors.invalid(point, `${point} may not be empty`);
  if (opts.max !== undefined && s.length > opts.max) throw errors.invalid(point, `${point} may be at most ${opts.max} characters`);
  return s;
}

/** meta: a flat map of strings, keys of at most 32 characters. */
export function readMeta(v: unknown, point: string): Record<string, string> {
  if (v === null) return {};
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw errors.invalid(point, `${point} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (k.length > 32) throw errors.invalid(point, `meta key "${k.slice(0, 40)}" is longer than 32 characters`);
    if (typeof val === 'number' || typeof val === 'boolean') out[k] = String(val);
    else if (typeof val === 'string') out[k] = val;
    else throw errors.invalid(point, `meta value of "${k}" must be a string`);
  }
  return out;
}

/** An edit body without `tags`: a grantee's edits leave the owner's tags alone. */
export const withoutTags = (body: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'tags'));
