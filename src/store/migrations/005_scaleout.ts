import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';

/** Rate counters are rewritten on every request and worthless after a crash: no need to make each write durable. */
export function scaleout(dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await dialect.makeUnlogged(db, 'rate_counters');
    },
  };
}
