import { sql } from 'kysely';
import type { Db } from './schema.ts';

export interface Count {
  n: number;
  until: number;
}

/**
 * The failure counts of every API node, in the database they share (the rate_counters table, whose `window` holds
 * the end of a count's window here): a guesser spreading his tries over the nodes spends one budget. Rows are
 * `login:s:<source>`, `login:a:<account>` and `login:t:<account> <source>` (a source that logged into the account).
 */
export class SharedLoginCounts {
  private writes = 0;

  constructor(private readonly db: Db) {}

  async add(buckets: string[], now: number, windowMs: number): Promise<void> {
    for (const b of buckets)
      await sql`
        INSERT INTO rate_counters (bucket, count, "window") VALUES (${b}, 1, ${now + windowMs})
        ON CONFLICT (bucket) DO UPDATE SET
          count = CASE WHEN rate_counters."window" > ${now} THEN rate_counters.count + 1 ELSE 1 END,
          "window" = CASE WHEN rate_counters."window" > ${now} THEN rate_counters."window" ELSE ${now + windowMs} END`.execute(this.db);
    // Ended windows are cleared now and then, so the table does not grow with every address that ever failed.
    if (++this.writes % 1000 === 0) await sql`DELETE FROM rate_counters WHERE bucket LIKE 'login:%' AND "window" <= ${now}`.execute(this.db);
  }

  async read(buckets: string[], now: number): Promise<Map<string, Count>> {
    const rows = await sql<{ bucket: string; count: number | string; window: number | string }>`
      SELECT bucket, count, "window" FROM rate_counters WHERE bucket IN (${sql.join(buckets)}) AND "window" > ${now}`.execute(this.db);
    return new Map(rows.rows.map((r) => [r.bucket, { n: Number(r.count), until: Number(r.window) }]));
  }
}
