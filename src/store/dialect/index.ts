import type { Kysely, SelectQueryBuilder } from 'kysely';
import type { Database } from '../schema.ts';

/** What the rest of the store needs to know about a database, and nothing more. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  readonly db: Kysely<Database>;
  /** Column type of an auto-incrementing primary key. */
  readonly serialType: 'integer' | 'bigserial';
  /** Case-insensitive LIKE operator. */
  readonly ilike: 'like' | 'ilike';
  /** DDL of the triggers that keep row_counts exact for `table` (see migrations/004_row_counts.ts). */
  rowCountTriggers(table: string): string[];
  /**
   * Whether other processes share this database (API nodes, agents). When false (SQLite: one process owns it),
   * state that only matters between processes, such as rate counters, may stay in memory.
   */
  readonly shared: boolean;
  /** Locks the selected rows until the transaction ends (a no-op where one writer holds the whole database). */
  lockRows<Q extends SelectQueryBuilder<Database, keyof Database, object>>(q: Q): Q;
  /** As lockRows, but skips rows another transaction holds: each row goes to exactly one claimer. */
  claimRows<Q extends SelectQueryBuilder<Database, keyof Database, object>>(q: Q): Q;
  /** OFFSET without a LIMIT. */
  offsetOnly<Q extends SelectQueryBuilder<Database, keyof Database, object>>(q: Q, offset: number): Q;
  /** Marks a table as scratch data that need not survive a crash (cheaper writes where the database supports it). */
  makeUnlogged(db: Kysely<unknown>, table: string): Promise<void>;
  /** Whether an error is a conflict between concurrent transactions (a deadlock, a serialisation failure, a busy
   * database) after which the whole transaction may simply run again. */
  isConflict(err: unknown): boolean;
  /** Whether an error is a lost or refused connection (a database restart): the work may be tried again later. */
  isConnectionLoss(err: unknown): boolean;
  /** Tell other processes that something changed (a no-op on SQLite, which has one process). */
  notify(channel: string, payload: string): Promise<void>;
  /** As notify, sent by the transaction `trx`: delivered when, and only if, it commits. */
  notifyIn(trx: Kysely<Database>, channel: string, payload: string): Promise<void>;
  /**
   * Receive notifications from other processes. `resumed` runs when the listening connection came back after a loss:
   * notifications sent meanwhile are gone, so state they keep fresh must be refreshed.
   */
  listen(channel: string, handler: (payload: string) => void, resumed?: () => void): Promise<void>;
  /**
   * Where other processes cannot notify (SQLite, written by CLI commands beside the server): a number that changes
   * whenever another connection has committed to the database since the last call. Cheap: no table is read.
   */
  readonly externalWrites?: () => number;
  close(): Promise<void>;
}

export async function openDialect(databaseUrl: string | null, dataDir: string): Promise<Dialect> {
  if (databaseUrl && /^postgres(ql)?:\/\//.test(databaseUrl)) {
    const { openPostgres } = await import('./postgres/index.ts');
    return openPostgres(databaseUrl);
  }
  if (databaseUrl) throw new Error(`OPENSIGMA_DATABASE_URL must start with postgres://, not ${databaseUrl}`);
  const { openSqlite } = await import('./sqlite/index.ts');
  return openSqlite(dataDir);
}
