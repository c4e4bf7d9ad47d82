import { ApiError, CliError, type ApiErrorItem } from './errors.ts';
import type { Profile } from './profiles.ts';

/**
 * A JSON value as the API answers it. `any` because the commands read a few fields of objects whose full shape is the
 * API's (and another cloud's may carry more), and pass the rest on untouched to the output.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- as the comment above says: the API's objects, read a few fields at a time
export type Json = any;

export type Query = Record<string, string | number | boolean | undefined>;

/** A CloudSigma API 2.0 endpoint, as one profile's user. */
export class Api {
  constructor(readonly profile: Profile) {}

  get base(): string {
    return this.profile.url;
  }

  authorization(): string {
    const p = this.profile;
    if (p.token) return `Bearer ${p.token}`;
    return `Basic ${Buffer.from(`${p.user ?? ''}:${p.password ?? ''}`).toString('base64')}`;
  }

  url(p: string, query: Query = {}): string {
    const u = new URL(this.base + (p.startsWith('/') ? p : `/${p}`));
    for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  /** The raw answer; an error status becomes an ApiError carrying the API's error array. */
  async fetch(method: string, p: string, opts: { query?: Query; body?: unknown; headers?: Record<string, string>; raw?: BodyInit } = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: this.authorization(), ...opts.headers };
    let body: BodyInit | undefined = opts.raw;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      // A streamed body needs duplex: 'half' in Node's fetch; a Buffer does not.
      const streamed = !!opts.raw && typeof (opts.raw as ReadableStream).getReader === 'function';
      res = await fetch(this.url(p, opts.query), { method, headers, body, ...(streamed ? { duplex: 'half' } : {}) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach ${this.base}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    if (res.status >= 400) throw await apiError(res);
    return res;
  }

  /** JSON in, JSON out (null for an empty answer). */
  async call<T = Json>(method: string, p: string, body?: unknown, query: Query = {}): Promise<T> {
    const res = await this.fetch(method, p, { body, query });
    const text = await res.text();
    if (!text) return null as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      return text as T;
    }
  }

  /** Every object of a list (limit=0), with the API's own filters. */
  async list<T = Json>(p: string, query: Query = {}): Promise<T[]> {
    const r = await this.call<{ objects: T[] }>('GET', p, undefined, { limit: 0, ...query });
    return r?.objects ?? [];
  }
}

async function apiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let items: ApiErrorItem[] = [];
  try {
    const parsed = JSON.parse(text);
    if (Array.isArray(parsed)) items = parsed;
    else if (parsed && typeof parsed === 'object') items = [parsed as ApiErrorItem];
  } catch {
    if (text.trim()) items = [{ error_message: text.trim().slice(0, 500) }];
  }
  return new ApiError(res.status, items);
}
