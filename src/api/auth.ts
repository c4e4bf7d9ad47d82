import type { FastifyRequest } from 'fastify';
import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import crypto from 'node:crypto';
import { hashPassword, sha256, verifyPassword } from '../store/users.ts';
import { LoginThrottle } from './login-throttle.ts';
import type { Actor } from '../commands/servers.ts';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const CACHE_MS = 60_000;

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

/**
 * Resolves the caller: HTTP Basic (email + password), Bearer token, or the login cookie session (which needs the
 * X-CSRFToken header on unsafe methods). Verified Basic credentials are cached briefly, since the hash is slow by design;
 * any password change, on any node or by the CLI, invalidates the cache before its next use.
 */
/** Basic credentials found right: whose they are, until when that may be reused, under which credentials generation. */
interface Verified {
  user: string;
  until: number;
  generation: number;
}

export class Authenticator {
  private readonly basicCache = new Map<string, Verified>();
  /**
   * The Basic credentials last verified on each connection. A keep-alive client sends the same header every time:
   * one string comparison then stands for decoding, hashing and the cache lookup. Held no longer than the connection.
   */
  private readonly byConnection = new WeakMap<object, Verified & { header: string }>();

  readonly throttle: LoginThrottle;
  /** What an unknown user's password is checked against, so that answering for one takes as long as for a known one. */
  private readonly dummyHash: Promise<string>;

  constructor(private readonly svc: Services) {
    // Several API nodes on one database share one budget; a single node keeps it in memory.
    this.throttle = new LoginThrottle(svc.config.loginFailuresPerSource, svc.config.loginFailuresPerAccount, Date.now, svc.store.sharedLoginCounts);
    this.dummyHash = hashPassword(crypto.randomBytes(16).toString('hex'));
  }

  /** The actor of a request whose Basic credentials were verified on its connection, as long as that still holds. */
  knownOnConnection(req: FastifyRequest): Actor | undefined {
    const hit = this.byConnection.get(req.raw.socket);
    if (!hit || hit.header !== req.headers.authorization || hit.until <= Date.now()) return undefined;
    return hit.generation === this.svc.store.users.credentialsGenerationNow() ? { user: hit.user } : undefined;
  }

  /** Null for a wrong password or an unknown user (alike, in answer and time); 429 once `source` or the account used its budget. */
  async checkPassword(email: string, password: string, source: string): Promise<Verified | null> {
    const account = email.toLowerCase();
    return this.throttle.guarded(account, source, () => this.verify(email, account, password, source));
  }

  private async verify(email: string, account: string, password: string, source: string): Promise<Verified | null> {
    const key = sha256(`${account}\0${password}`);
    // Taken before the user is read: a password change after this point makes the entry stale at the next check.
    const generation = await this.svc.store.users.credentialsGeneration();
    const hit = this.basicCache.get(key);
    if (hit && hit.generation === generation && hit.until > Date.now()) return hit;
    const u = await this.svc.store.users.byEmail(email);
    const stored = u?.password_hash ?? (await this.dummyHash);
    const right = await this.throttle.hash(() => verifyPassword(password, stored));
    if (!u || !right) {
      await this.throttle.failed(account, source);
      return null;
    }
    await this.throttle.succeeded(account, source);
    if (this.basicCache.size > 10_000) this.basicCache.clear();
    const entry: Verified = { user: u.uuid, until: Date.now() + CACHE_MS, generation };
    this.basicCache.set(key, entry);
    return entry;
  }

  async authenticate(req: FastifyRequest, mode: 'user' | 'basic-only'): Promise<Actor> {
    const h = req.headers.authorization;
    if (h) {
      const [scheme, value] = h.split(/\s+/, 2) as [string, string | undefined];
      if (/^basic$/i.test(scheme) && value) {
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i < 0) throw errors.unauthorized();
        const verified = await this.checkPassword(decoded.slice(0, i), decoded.slice(i + 1), req.ip);
        if (!verified) throw errors.unauthorized();
        this.byConnection.set(req.raw.socket, { ...verified, header: h });
        return { user: verified.user };
      }
      if (/^bearer$/i.test(scheme) && value && mode !== 'basic-only') {
        const t = await this.svc.store.users.resolveToken(value, 'api');
        if (!t) throw errors.unauthorized();
        return { user: t.user };
      }
      throw errors.unauthorized();
    }
    if (mode === 'basic-only') throw errors.unauthorized();
    const cookies = parseCookies(req.headers.cookie);
    if (cookies.sessionid) {
      const s = await this.svc.store.users.resolveToken(cookies.sessionid, 'session');
      if (!s) throw errors.unauthorized();
      if (!SAFE.has(req.method)) {
        const given = req.headers['x-csrftoken'];
        if (!given || given !== s.csrf || (cookies.csrftoken && cookies.csrftoken !== s.csrf)) throw errors.csrf();
      }
      return { user: s.user };
    }
    throw errors.unauthorized();
  }
}
