import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ADMIN_PREFIX } from './faults.ts';

/** The largest body kept of one request or answer; beyond it the entry says it was cut. */
export const BODY_CAP = 64 * 1024;
export const REDACTED = '[redacted]';

const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-csrftoken', 'x-csrf-token']);
/** Body fields that hold a secret, at any depth: passwords, private keys, tokens (sessions, CSRF, API), VNC passwords. */
const SECRET_KEY = /(password|passwd|private_key|secret|token|csrf|api_key|sessionid)/i;

export interface LoggedBody {
  /** the text (JSON as sent, secrets replaced), or null when there was none or it was streamed */
  text: string | null;
  size: number;
  truncated: boolean;
  /** a drive upload or download: its bytes are not kept */
  streamed: boolean;
  mime: string | null;
}

export interface LoggedRequest {
  id: string;
  started: string;
  duration_ms: number;
  /** the uuid of the account that made it; null for anonymous or refused credentials */
  account: string | null;
  method: string;
  url: string;
  request: { headers: Record<string, string>; body: LoggedBody };
  response: { status: number; headers: Record<string, string>; body: LoggedBody };
}

/** Replaces every secret field of a JSON value, at any depth. */
export function redactValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redactValue);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEY.test(k) && x !== null && x !== '' ? REDACTED : redactValue(x);
    return out;
  }
  return v;
}

/** Text that is not JSON (a form, a cut body): key=value and "key": "value" pairs of secret keys are replaced. */
function redactText(s: string): string {
  return s
    .replace(/("(?:[^"\\]*(?:password|passwd|private_key|secret|token|csrf|api_key|sessionid)[^"\\]*)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, `$1"${REDACTED}"`)
    .replace(/(\b\w*(?:password|passwd|private_key|secret|token|csrf|api_key|sessionid)\w*=)[^&\s]*/gi, `$1${REDACTED}`)
    .replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED);
}

function bodyOf(raw: unknown, mime: string | null, streamed: boolean): LoggedBody {
  if (streamed) return { text: null, size: 0, truncated: false, streamed: true, mime };
  if (raw === undefined || raw === null) return { text: null, size: 0, truncated: false, streamed: false, mime };
  let text: string;
  if (typeof raw === 'string') {
    try {
      text = JSON.stringify(redactValue(JSON.parse(raw)));
    } catch {
      text = redactText(raw);
    }
  } else if (Buffer.isBuffer(raw)) text = redactText(raw.toString('utf8'));
  else text = JSON.stringify(redactValue(raw));
  const size = Buffer.byteLength(text);
  if (size <= BODY_CAP) return { text, size, truncated: false, streamed: false, mime };
  return { text: Buffer.from(text).subarray(0, BODY_CAP).toString('utf8'), size, truncated: true, streamed: false, mime };
}

function headersOf(h: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    const name = k.toLowerCase();
    out[name] = SECRET_HEADERS.has(name) ? REDACTED : Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

function urlOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q) + redactText(url.slice(q));
}

/**
 * The last N requests and answers of this API node, in a ring. Its hooks are registered only when it is on, so an
 * installation without it pays nothing per request.
 */
export class RequestLog {
  private readonly ring: LoggedRequest[] = [];
  private next = 0;
  private readonly answers = new WeakMap<FastifyRequest, unknown>();

  constructor(readonly size: number) {}

  /** onSend must come before compression's (the text, not gzip); onResponse sees the status and the time taken. */
  registerBeforeCompression(app: FastifyInstance): void {
    app.addHook('onSend', (req, _reply, payload, done) => {
      if (typeof payload === 'string' || Buffer.isBuffer(payload)) this.answers.set(req, payload);
      done(null, payload);
    });
    app.addHook('onResponse', (req, reply, done) => {
      if (!req.url.startsWith(`${ADMIN_PREFIX}requests`)) this.record(req, reply.statusCode, reply.getHeaders(), reply.elapsedTime);
      done();
    });
  }

  private record(req: FastifyRequest, status: number, resHeaders: Record<string, unknown>, elapsed: number): void {
    const streamed = req.routeOptions.config?.stream === true;
    const reqMime = (req.headers['content-type'] as string | undefined) ?? null;
    const resMime = (resHeaders['content-type'] as string | undefined) ?? null;
    // A download's answer is a stream (never a string), so it has nothing in `answers`: its bytes are not kept.
    const answer = this.answers.get(req);
    const entry: LoggedRequest = {
      id: req.id,
      started: new Date(Date.now() - elapsed).toISOString(),
      duration_ms: Math.round(elapsed * 10) / 10,
      account: req.actor?.user ?? null,
      method: req.method,
      url: urlOf(req.url),
      request: { headers: headersOf(req.headers), body: bodyOf(streamed ? null : req.body, reqMime, streamed && req.method !== 'GET') },
      response: { status, headers: headersOf(resHeaders), body: bodyOf(answer, resMime, answer === undefined && streamed && req.method === 'GET') },
    };
    if (this.ring.length < this.size) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.size;
  }

  /** Oldest first, the last `limit` of them (of one account if given). */
  entries(account: string | null, limit: number): LoggedRequest[] {
    const ordered = this.ring.length < this.size ? this.ring : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    const mine = account ? ordered.filter((e) => e.account === account) : ordered;
    return limit > 0 ? mine.slice(-limit) : mine;
  }
}

/** HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/), which browsers' developer tools and proxies read. */
export function toHar(entries: LoggedRequest[], baseUrl: string, version: string): unknown {
  const pairs = (h: Record<string, string>) => Object.entries(h).map(([name, value]) => ({ name, value }));
  return {
    log: {
      version: '1.2',
      creator: { name: 'opensigma', version },
      entries: entries.map((e) => {
        const u = new URL(e.url, baseUrl);
        const note = (b: LoggedBody) => (b.streamed ? 'streamed: bytes not recorded' : b.truncated ? `cut at ${BODY_CAP} of ${b.size} bytes` : undefined);
        return {
          startedDateTime: e.started,
          time: e.duration_ms,
          request: {
            method: e.method,
            url: u.toString(),
            httpVersion: 'HTTP/1.1',
            cookies: [],
            headers: pairs(e.request.headers),
            queryString: [...u.searchParams.entries()].map(([name, value]) => ({ name, value })),
            ...(e.request.body.text !== null ? { postData: { mimeType: e.request.body.mime ?? 'application/octet-stream', text: e.request.body.text } } : {}),
            headersSize: -1,
            bodySize: e.request.body.size,
            ...(note(e.request.body) ? { comment: note(e.request.body) } : {}),
          },
          response: {
            status: e.response.status,
            statusText: '',
            httpVersion: 'HTTP/1.1',
            cookies: [],
            headers: pairs(e.response.headers),
            content: {
              size: e.response.body.size,
              mimeType: e.response.body.mime ?? 'application/octet-stream',
              ...(e.response.body.text !== null ? { text: e.response.body.text } : {}),
            },
            redirectURL: '',
            headersSize: -1,
            bodySize: e.response.body.size,
            ...(note(e.response.body) ? { comment: note(e.response.body) } : {}),
          },
          cache: {},
          timings: { send: 0, wait: e.duration_ms, receive: 0 },
          comment: `request ${e.id}${e.account ? `, account ${e.account}` : ''}`,
        };
      }),
    },
  };
}
