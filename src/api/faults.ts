import { randomFraction, randomUuid } from '../domain/random.ts';
import fs from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pino from 'pino';
import { ApiError, errors, type ErrorType } from '../errors.ts';
import { API } from '../domain/refs.ts';

/** Fault and latency injection, for clients that use opensigma as the cloud of their tests (docs/test-cloud.md). */
export interface FaultRule {
  id: string;
  /** GET, POST, PUT, DELETE or * */
  method: string;
  /** a glob over the path: * is one segment (or part of one), ** any number of them; or null when path_regex is given */
  path: string | null;
  /** a JavaScript regular expression over the path (without the query) */
  path_regex: string | null;
  /** only this account's requests (email or uuid), resolved to its uuid */
  account: string | null;
  /** only requests whose query string contains this */
  query: string | null;
  /** the answer's status (400..599); null for a latency-only rule, which delays the real answer */
  status: number | null;
  error_message: string;
  error_type: ErrorType;
  error_point: string | null;
  probability: number;
  latency_ms: number;
  /** fires at most this many times; null = unlimited */
  count: number | null;
  /** how often it has fired */
  fired: number;
}

const METHODS = new Set(['*', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
const FIELDS = new Set([
  'id',
  'method',
  'path',
  'path_regex',
  'account',
  'query',
  'status',
  'error_message',
  'error_type',
  'error_point',
  'probability',
  'latency_ms',
  'count',
  'fired',
]);
const ERROR_TYPES = new Set<ErrorType>(['validation', 'notexist', 'backend', 'permission', 'database', 'concurrency', 'billing', 'payment', 'ratelimit']);

function typeOf(status: number): ErrorType {
  if (status === 401 || status === 403) return 'permission';
  if (status === 402) return 'billing';
  if (status === 404) return 'notexist';
  if (status === 429) return 'ratelimit';
  if (status === 503) return 'concurrency';
  return status >= 500 ? 'backend' : 'validation';
}

/** /api/2.0/servers/* /action/ as a regex: * stays inside a segment, ** crosses them; a trailing slash is optional. */
export function globToRegex(glob: string): RegExp {
  const body = glob
    .replace(/\/+$/, '')
    .split(/(\*\*|\*)/)
    .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}/?$`);
}

interface Compiled {
  rule: FaultRule;
  re: RegExp;
  /** the account's uuid, once known */
  accountUuid: string | null;
}

type Bad = (point: string, message: string) => never;

/** Checks one rule as a client sent it; every mistake is a 400 with the API's error array. */
export function parseRule(input: unknown, point = ''): FaultRule {
  const bad: Bad = (p, message) => {
    throw errors.invalid(`${point}${p}`, message);
  };
  if (!input || typeof input !== 'object' || Array.isArray(input)) bad('', 'A fault rule is a JSON object');
  const r = input as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!FIELDS.has(k)) bad(k, `Unknown field ${k}; a rule has ${[...FIELDS].filter((f) => f !== 'fired').join(', ')}`);
  const str = (k: string): string | null => {
    const v = r[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || !v) bad(k, `${k} must be a non-empty string`);
    return v as string;
  };
  const num = (k: string, min: number, max: number, integer: boolean): number | null => {
    const v = r[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v)))
      bad(k, `${k} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
    return v as number;
  };
  const method = (str('method') ?? '*').toUpperCase();
  if (!METHODS.has(method)) bad('method', `method must be one of ${[...METHODS].join(', ')}`);
  const path = str('path');
  const pathRegex = str('path_regex');
  if (!path && !pathRegex) bad('path', 'A rule needs a path (a glob) or a path_regex');
  if (path && pathRegex) bad('path_regex', 'Give a path or a path_regex, not both');
  if (path && !path.startsWith('/')) bad('path', 'path must start with /, e.g. /api/2.0/servers/*/action/');
  if (pathRegex) {
    try {
      new RegExp(pathRegex);
    } catch (e) {
      bad('path_regex', `path_regex is not a regular expression: ${(e as Error).message}`);
    }
  }
  const status = num('status', 400, 599, true);
  const latency = num('latency_ms', 0, 600_000, true) ?? 0;
  if (status === null && latency === 0) bad('status', 'A rule needs a status (400..599) or a latency_ms, or both');
  const errorType = (str('error_type') ?? typeOf(status ?? 500)) as ErrorType;
  if (!ERROR_TYPES.has(errorType)) bad('error_type', `error_type must be one of ${[...ERROR_TYPES].join(', ')}`);
  const id = str('id') ?? randomUuid('fault').slice(0, 8);
  if (!/^[\w.-]{1,64}$/.test(id)) bad('id', 'id must be letters, digits, dots, dashes or underscores (at most 64)');
  return {
    id,
    method,
    path,
    path_regex: pathRegex,
    account: str('account'),
    query: str('query'),
    status,
    error_message: str('error_message') ?? `Injected fault ${id}`,
    error_type: errorType,
    error_point: str('error_point'),
    probability: num('probability', 0, 1, false) ?? 1,
    latency_ms: latency,
    count: num('count', 0, Number.MAX_SAFE_INTEGER, true),
    fired: 0,
  };
}

/** A list of rules as a file or a POST gives them: one rule, an array, or {"objects": [...]}. */
export function parseRules(input: unknown): FaultRule[] {
  const objects = input && typeof input === 'object' ? (input as { objects?: unknown }).objects : undefined;
  const list = Array.isArray(input) ? input : Array.isArray(objects) ? objects : [input];
  // An empty body is null: it is one rule that is not an object (400), never a TypeError (500).
  return list.map((r, i) => parseRule(r, list.length > 1 || Array.isArray(input) || objects !== undefined ? `objects.${i}.` : ''));
}

/**
 * The rules of this API node, in memory (not shared between nodes). `active` is the one check the hot path pays
 * while no rule is set.
 */
export class Faults {
  private rules: Compiled[] = [];
  active = false;

  constructor(
    private readonly log: pino.Logger,
    private readonly accountUuid: (ref: string) => Promise<string | null>,
  ) {}

  list(): FaultRule[] {
    return this.rules.map((c) => ({ ...c.rule }));
  }

  async add(rules: FaultRule[]): Promise<FaultRule[]> {
    const compiled: Compiled[] = [];
    for (const rule of rules) {
      if (this.rules.some((c) => c.rule.id === rule.id) || compiled.some((c) => c.rule.id === rule.id))
        throw errors.invalid('id', `A rule with id ${rule.id} is already set`);
      let accountUuid: string | null = null;
      if (rule.account) {
        accountUuid = await this.accountUuid(rule.account);
        if (!accountUuid) throw errors.invalid('account', `No account ${rule.account}`);
      }
      compiled.push({ rule, re: rule.path_regex ? new RegExp(rule.path_regex) : globToRegex(rule.path!), accountUuid });
    }
    this.rules.push(...compiled);
    this.active = this.rules.length > 0;
    return compiled.map((c) => ({ ...c.rule }));
  }

  remove(id: string): boolean {
    const before = this.rules.length;
    this.rules = this.rules.filter((c) => c.rule.id !== id);
    this.active = this.rules.length > 0;
    return this.rules.length < before;
  }

  clear(): void {
    this.rules = [];
    this.active = false;
  }

  /** What the matching rules do to this request: the latency to add and, if one fires with a status, its answer. */
  decide(method: string, url: string, account: string | null): { latency: number; fault: FaultRule | null; fired: FaultRule[] } {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    let latency = 0;
    const fired: FaultRule[] = [];
    for (const c of this.rules) {
      const r = c.rule;
      if (r.method !== '*' && r.method !== method) continue;
      if (r.count !== null && r.fired >= r.count) continue;
      if (c.accountUuid && c.accountUuid !== account) continue;
      if (r.query && !query.includes(r.query) && !safeDecode(query).includes(r.query)) continue;
      if (!c.re.test(path)) continue;
      if (r.probability < 1 && randomFraction('fault') >= r.probability) continue;
      r.fired++;
      fired.push(r);
      latency += r.latency_ms;
      if (r.status !== null) return { latency, fault: r, fired };
    }
    return { latency, fault: null, fired };
  }

  /** Reads OPENSIGMA_FAULTS_FILE: a mistake in it stops the start, as any wrong setting does. */
  async loadFile(file: string): Promise<void> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`OPENSIGMA_FAULTS_FILE ${file}: ${(e as Error).message}`);
    }
    try {
      await this.add(parseRules(parsed));
    } catch (e) {
      const err = e instanceof ApiError ? `${e.errors[0]!.error_point ?? ''}: ${e.message}` : (e as Error).message;
      throw new Error(`OPENSIGMA_FAULTS_FILE ${file}: ${err}`);
    }
    this.log.warn({ rules: this.rules.length, file }, 'fault injection rules set from file');
  }

  /**
   * The hook, a preHandler registered after authentication (so a rule can name an account). The administrator's
   * own routes are never faulted: a rule must not lock out its own removal.
   */
  register(app: FastifyInstance): void {
    app.addHook('preHandler', (req: FastifyRequest, reply: FastifyReply, done) => {
      if (!this.active) return done();
      if (req.url.startsWith(ADMIN_PREFIX)) return done();
      const { latency, fault, fired } = this.decide(req.method, req.url, req.actor?.user ?? null);
      if (!fired.length) return done();
      for (const r of fired)
        req.log.warn({ fault: r.id, status: r.status, latency_ms: r.latency_ms, method: req.method, url: req.url, account: req.actor?.user }, 'fault injected');
      const answer = () => {
        if (!fault) return done();
        const e = errors.injectedFault(fault.status!, fault);
        reply.code(e.statusCode).headers(e.headers).header('x-opensigma-fault', fault.id).send(e.errors);
      };
      if (latency > 0) setTimeout(answer, latency);
      else answer();
    });
  }
}

export const ADMIN_PREFIX = `${API}/opensigma/`;

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
