import { errors } from '../errors.ts';
import type { Count, SharedLoginCounts } from '../store/login-counts.ts';

/** The window failed password checks are counted in, per source and per account. */
export const WINDOW_MS = 5 * 60_000;
/** Hashes running at once: fewer than libuv's 4 threads, so file I/O always has a thread left. */
export const HASHES_RUNNING = 2;
/** Hashes waiting for a turn; beyond it a password check is refused at once instead of queued. */
export const HASHES_WAITING = 32;

/** How long a source that logged into an account stays trusted by it on every node. */
const TRUSTED_MS = 30 * 24 * 3600_000;

/**
 * Wrong passwords are throttled per source and per account (429 with Retry-After): in memory on a single node, in
 * the shared database (SharedLoginCounts) when several API nodes serve. An account over its budget is closed only
 * to sources that have not logged into it before, so an attacker spraying it from many addresses does not lock its
 * owner out of the machines he already uses.
 */
export class LoginThrottle {
  private readonly bySource = new Map<string, Count>();
  private readonly byAccount = new Map<string, Count>();
  /** account -> sources that gave its right password (a few each, newest kept) */
  private readonly trusted = new Map<string, string[]>();
  /** password checks under way, per source and per account: each may yet be a failure */
  private readonly checking = new Map<string, number>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  /**
   * @param perSource failures allowed from one address per window: strict, an attacker's budget
   * @param perAccount failures allowed against one account per window, from all addresses: generous
   */
  constructor(
    private readonly perSource: number,
    private readonly perAccount: number,
    private readonly now: () => number = Date.now,
    private readonly shared: SharedLoginCounts | null = null,
  ) {}

  /** The shared counts of this source and account, copied over the node's own before they are checked. */
  private async refresh(account: string, source: string): Promise<void> {
    const got = await this.shared!.read([`login:s:${source}`, `login:a:${account}`, `login:t:${account} ${source}`], this.now());
    for (const [map, key, bucket] of [
      [this.bySource, source, `login:s:${source}`],
      [this.byAccount, account, `login:a:${account}`],
    ] as const) {
      const c = got.get(bucket);
      if (c) map.set(key, c);
      else map.delete(key);
    }
    if (got.has(`login:t:${account} ${source}`)) this.trust(account, source);
  }

  private over(map: Map<string, Count>, key: string, limit: number): number {
    const c = map.get(key);
    const pending = this.checking.get(map === this.bySource ? `s\0${key}` : `a\0${key}`) ?? 0;
    if (!c) return 0;
    if (c.until <= this.now()) {
      map.delete(key);
      return 0;
    }
    // Once a source or account has failed, checks under way count as failures to come: 8 guesses sent at once
    // cannot all pass a budget of 1 left. (Before any failure they do not, so a client's first burst of parallel
    // requests with the right password is never refused.)
    return c.n + pending >= limit ? Math.ceil((c.until - this.now()) / 1000) : 0;
  }

  /**
   * Runs one password check for `account` from `source` after `check`, counted as under way until it ends (then
   * `failed` or `succeeded` has said how it went).
   */
  async guarded<T>(account: string, source: string, work: () => Promise<T>): Promise<T> {
    if (this.shared) await this.refresh(account, source);
    this.check(account, source);
    const keys = [`s\0${source}`, `a\0${account}`];
    for (const k of keys) this.checking.set(k, (this.checking.get(k) ?? 0) + 1);
    try {
      return await work();
    } finally {
      for (const k of keys) {
        const n = this.checking.get(k)! - 1;
        if (n) this.checking.set(k, n);
        else this.checking.delete(k);
      }
    }
  }

  /** Throws 429 when this source, or this account for this source, has used its budget of failures. */
  check(account: string, source: string): void {
    const trusted = this.trusted.get(account)?.includes(source);
    const wait = this.over(this.bySource, source, this.perSource) || (trusted ? 0 : this.over(this.byAccount, account, this.perAccount));
    if (wait) throw errors.loginThrottled(wait);
  }

  async failed(account: string, source: string): Promise<void> {
    // Counted where every node sees it before the answer goes out, so the next try on any node finds it.
    if (this.shared) await this.shared.add([`login:s:${source}`, `login:a:${account}`], this.now(), WINDOW_MS);
    for (const [map, key] of [
      [this.bySource, source],
      [this.byAccount, account],
    ] as const) {
      const c = map.get(key);
      if (c && c.until > this.now()) c.n++;
      else map.set(key, { n: 1, until: this.now() + WINDOW_MS });
    }
    // Bounded memory under a spray of addresses or names: the oldest windows go first (Map keeps insertion order).
    for (const map of [this.bySource, this.byAccount]) while (map.size > 100_000) map.delete(map.keys().next().value!);
  }

  async succeeded(account: string, source: string): Promise<void> {
    if (this.shared && !this.trusted.get(account)?.includes(source)) await this.shared.add([`login:t:${account} ${source}`], this.now(), TRUSTED_MS);
    this.trust(account, source);
  }

  private trust(account: string, source: string): void {
    const list = this.trusted.get(account) ?? [];
    if (!list.includes(source)) {
      list.push(source);
      if (list.length > 16) list.shift();
      this.trusted.set(account, list);
      if (this.trusted.size > 100_000) this.trusted.delete(this.trusted.keys().next().value!);
    }
  }

  /**
   * Runs a password hash when a turn is free, waits for one among at most HASHES_WAITING, and refuses beyond (503):
   * a flood of wrong passwords cannot queue unbounded work on the thread pool that file I/O needs too.
   */
  async hash<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= HASHES_RUNNING) {
      if (this.waiting.length >= HASHES_WAITING) throw errors.busy('Too many password checks at once, retry later', 1);
      await new Promise<void>((r) => this.waiting.push(r));
    } else this.running++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // The turn passes straight to the next waiter; running drops only when nobody waits.
      if (next) next();
      else this.running--;
    }
  }
}
