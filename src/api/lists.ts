import type { Condition, ListQuery } from '../store/documents.ts';
import { errors } from '../errors.ts';

/** Splits a filter value on unescaped commas: `a,b` is a OR b; `\,` is a comma; `\\` a backslash. */
export function splitOr(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '\\' && (value[i + 1] === ',' || value[i + 1] === '\\')) {
      cur += value[i + 1];
      i++;
    } else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

export type Query = Record<string, string | string[] | undefined>;

/**
 * The most filter values one list request may give, counted over all its filters (each OR value and each repeat):
 * every value is a condition of the query, and thousands of them made the database refuse the statement (a 500).
 */
export const MAX_FILTER_VALUES = 100;
/** The most objects one create or bulk request may carry: each is validated and written in one transaction. */
export const MAX_OBJECTS_PER_REQUEST = 100;

/** Refuses a create or bulk request over MAX_OBJECTS_PER_REQUEST objects. */
export function boundedObjects<T>(list: T[]): T[] {
  if (list.length > MAX_OBJECTS_PER_REQUEST)
    throw errors.invalid('objects', `At most ${MAX_OBJECTS_PER_REQUEST} objects per request, not ${list.length}: send them in several requests`);
  return list;
}

const all = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function nonNegativeInt(v: string | string[] | undefined, name: string, fallback: number): number {
  const s = all(v).at(-1);
  if (s === undefined || s === '') return fallback;
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw errors.invalid(name, `${name} must be a non-negative integer`);
  return Number(s);
}

export interface ListSpec {
  /** filter parameter -> [column, op] */
  filters: Record<string, [string, 'exact' | 'contains']>;
  ordering: string[];
  defaultLimit?: number;
}

export const STANDARD_FILTERS: ListSpec['filters'] = {
  name: ['name', 'exact'],
  name__contains: ['name', 'contains'],
  name__icontains: ['name', 'contains'],
  uuid: ['uuid', 'exact'],
  status: ['status', 'exact'],
};

const CONTROL = new Set(['limit', 'offset', 'fields', 'order_by', 'format', 'tag', 'tag__name', 'recurse', 'do', 'avoid']);

/** Turns the query string of a list request into a store query. Unknown parameters are ignored, as the real API does. */
export function parseListQuery(query: Query, spec: ListSpec): ListQuery {
  const conditions: Condition[] = [];
  for (const [param, raw] of Object.entries(query)) {
    if (CONTROL.has(param)) continue;
    const f = spec.filters[param];
    if (!f) continue;
    for (const v of all(raw)) conditions.push({ column: f[0], op: f[1], values: splitOr(v) });
  }
  const tags = all(query.tag).map(splitOr);
  const tagNames = all(query.tag__name).map(splitOr);
  const given = [...conditions.map((c) => c.values), ...tags, ...tagNames].reduce((n, v) => n + v.length, 0);
  if (given > MAX_FILTER_VALUES) throw errors.invalid(null, `At most ${MAX_FILTER_VALUES} filter values per request, not ${given}`);
  let orderBy: ListQuery['orderBy'];
  const ob = all(query.order_by).at(-1);
  if (ob) {
    const desc = ob.startsWith('-');
    const column = desc ? ob.slice(1) : ob;
    if (!spec.ordering.includes(column)) throw errors.invalid('order_by', `Ordering by ${column} is not allowed; allowed: ${spec.ordering.join(', ')}`);
    orderBy = { column, desc };
  }
  return {
    conditions,
    tags,
    tagNames,
    orderBy,
    limit: nonNegativeInt(query.limit, 'limit', spec.defaultLimit ?? 20),
    offset: nonNegativeInt(query.offset, 'offset', 0),
  };
}

/** `fields=a,b` keeps only those keys. */
export function selectFields<T extends object>(obj: T, query: Query): Partial<T> {
  const f = all(query.fields).at(-1);
  if (!f) return obj;
  const keep = new Set(
    f
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  return Object.fromEntries(Object.entries(obj).filter(([k]) => keep.has(k))) as Partial<T>;
}

export function envelope<T>(objects: T[], q: { limit: number; offset: number }, total: number) {
  return { meta: { limit: q.limit, offset: q.offset, total_count: total }, objects };
}

/** Create bodies come as {"objects":[...]}, a bare list, or a bare object. */
export function createItems(body: unknown): Record<string, unknown>[] {
  let items: unknown;
  if (Array.isArray(body)) items = body;
  else if (body && typeof body === 'object' && Array.isArray((body as { objects?: unknown }).objects)) items = (body as { objects: unknown[] }).objects;
  else if (body && typeof body === 'object') items = [body];
  else throw errors.invalid(null, 'Expected a JSON object, a list of objects, or {"objects": [...]}');
  const list = items as unknown[];
  if (list.length === 0) throw errors.invalid('objects', 'At least one object is required');
  boundedObjects(list);
  list.forEach((o, i) => {
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw errors.invalid('objects', `Item ${i} is not a JSON object`);
  });
  return list as Record<string, unknown>[];
}
