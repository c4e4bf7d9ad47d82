import { errors } from '../errors.ts';

export const API = '/api/2.0';

export interface Ref {
  resource_uri: string;
  uuid: string;
}

export function ref(resource: string, id: string): Ref {
  return { resource_uri: `${API}/${resource}/${id}/`, uuid: id };
}

export const ownerRef = (uuid: string | null): Ref | null => (uuid ? ref('user', uuid) : null);

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string): boolean => UUID_RE.test(s);

/**
 * Reads a reference as clients send it: an id string, a resource URI, or an object with uuid or resource_uri.
 * Returns the id, or raises a validation error pointing at `point`.
 */
export function readRef(value: unknown, point: string, opts: { kind?: 'uuid' | 'ip' | 'any' } = {}): string {
  let id: string | undefined;
  if (typeof value === 'string') id = value;
  else if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.uuid === 'string') id = v.uuid;
    else if (typeof v.resource_uri === 'string') id = v.resource_uri;
    else if (typeof v.id === 'string' || typeof v.id === 'number') id = String(v.id);
  }
  if (id === undefined) throw errors.invalid(point, 'Expected a reference: a UUID, a resource URI or an object with a uuid');
  const m = /\/api\/2\.0\/[a-z_]+\/([^/]+)\/?$/.exec(id);
  if (m) id = m[1]!;
  id = id.trim();
  const kind = opts.kind ?? 'uuid';
  if (kind === 'uuid') {
    if (!isUuid(id)) throw errors.invalid(point, `"${id}" is not a valid UUID`);
    return id.toLowerCase();
  }
  if (kind === 'ip' && !/^[0-9a-f:.]+$/i.test(id)) throw errors.invalid(point, `"${id}" is not a valid IP address`);
  return id;
}

export function readRefList(value: unknown, point: string, opts: { kind?: 'uuid' | 'ip' | 'any' } = {}): string[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw errors.invalid(point, 'Expected a list');
  return value.map((v) => readRef(v, `${point}`, opts)).filter((v, i, a) => a.indexOf(v) === i);
}
