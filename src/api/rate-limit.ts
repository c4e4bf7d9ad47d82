import { sql } from 'kysely';
import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import type { RateLimits } from '../config.ts';

/**
 * Requests per account per method per minute, as CloudSigma publishes them. One process (SQLite) counts in memory;
 * several API nodes (PostgreSQL) count in the database, so the limit is per account across nodes.
 */
export class RateLimiter {
  private readonly counts = new Map<string, number>();
  private window = 0;

  constructor(private readonly svc: Services) {}

  async check(user: string, method: string): Promise<void> {
    const limits = this.svc.config.rateLimits;
    const m = (method === 'HEAD' ? 'GET' : method) as keyof RateLimits;
    const limit = limits[m];
    if (!limit) return;
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    const retryAfter = Math.ceil(((window + 1) * 60_000 - now) / 1000);
    const bucket = `${user}:${m}`;
    let count: number;
    if (this.svc.store.dialect.shared) {
      const r = await sql<{ count: number }>`
        INSERT INTO rate_counters (bucket, count, "window") VALUES (${bucket}, 1, ${window})
        ON CONFLICT (bucket) DO UPDATE SET
          count = CASE WHEN rate_counters."window" = ${window} THEN rate_counters.count + 1 ELSE 1 END,
          "window" = ${window}
        RETURNING count`.execute(this.svc.store.db);
      count = Number(r.rows[0]!.count);
    } else {
      if (window !== this.window) {
        this.counts.clear();
        this.window = window;
      }
      count = (this.counts.get(bucket) ?? 0) + 1;
      this.counts.set(bucket, count);
    }
    if (count > limit) throw errors.rateLimited(m, retryAfter);
  }
}
