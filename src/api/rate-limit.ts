import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import type { RateLimits } from '../config.ts';

/** A node's share of an account's budget for one minute window, taken from the shared counter. */
interface Lease {
  window: number;
  left: number;
  /** The shared counter reached the limit: nothing more to lease this window. */
  exhausted: boolean;
  refill: Promise<void> | null;
}

/**
 * Requests per account per method per minute, as CloudSigma publishes them. One process (SQLite) counts in memory;
 * several API nodes (PostgreSQL) share one counter per account in the database. A node leases requests from it in
 * chunks (1 per 100 of the limit, at most 100), so most requests cost no round trip: the limit is never exceeded
 * across nodes, and at worst a chunk a node leased and did not use is lost to the others until the window ends.
 */
export class RateLimiter {
  private readonly counts = new Map<string, number>();
  private readonly leases = new Map<string, Lease>();
  private window = 0;

  constructor(private readonly svc: Services) {}

  /** Throws when over the limit; a promise only where the answer needs the database (several API nodes). */
  check(user: string, method: string): Promise<void> | undefined {
    const limits = this.svc.config.rateLimits;
    const m = (method === 'HEAD' ? 'GET' : method) as keyof RateLimits;
    const limit = limits[m];
    if (!limit) return;
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    const retryAfter = Math.ceil(((window + 1) * 60_000 - now) / 1000);
    const bucket = `${user}:${m}`;
    if (window !== this.window) {
      this.counts.clear();
      this.leases.clear();
      this.window = window;
    }
    if (this.svc.store.dialect.shared)
      return this.take(bucket, window, limit).then((allowed) => {
        if (!allowed) throw errors.rateLimited(m, retryAfter);
      });
    const count = (this.counts.get(bucket) ?? 0) + 1;
    this.counts.set(bucket, count);
    if (count > limit) throw errors.rateLimited(m, retryAfter);
    return undefined;
  }

  private async take(bucket: string, window: number, limit: number): Promise<boolean> {
    for (;;) {
      let lease = this.leases.get(bucket);
      if (!lease || lease.window !== window) {
        lease = { window, left: 0, exhausted: false, refill: null };
        this.leases.set(bucket, lease);
      }
      if (lease.left > 0) {
        lease.left--;
        return true;
      }
      if (lease.exhausted) return false;
      // Requests arriving while a lease is on its way wait for it rather than lease again.
      const l = lease;
      l.refill ??= this.lease(bucket, l, limit).finally(() => (l.refill = null));
      await l.refill;
    }
  }

  private async lease(bucket: string, lease: Lease, limit: number): Promise<void> {
    const chunk = Math.min(100, Math.max(1, Math.floor(limit / 100)));
    const w = lease.window;
    const before = (await this.svc.store.bumpRateCounter(bucket, chunk, w)) - chunk;
    const usable = Math.max(0, Math.min(chunk, limit - before));
    lease.left += usable;
    if (usable < chunk) lease.exhausted = true;
  }
}
