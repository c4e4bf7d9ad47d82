import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';

/** The document tables this migration starts counting (the store's own list is store/documents.ts's COUNTED_TABLES). */
const COUNTED_TABLES = ['servers', 'drives', 'tags', 'keypairs'];

/**
 * Starts counting a document table's rows per owner: backfills row_counts and installs the triggers that keep it
 * exact. A later migration may call it for its own tables; the store's COUNTED_TABLES then names them too.
 */
export async function countRows(db: Kysely<any>, dialect: Dialect, table: string): Promise<void> {
  await sql`INSERT INTO row_counts (tbl, owner_key, n)
            SELECT ${table}, coalesce(owner, ''), count(*) FROM ${sql.table(table)} GROUP BY coalesce(owner, '')`.execute(db);
  for (const ddl of dialect.rowCountTriggers(table)) await sql.raw(ddl).execute(db);
}

/**
 * Unfiltered lists answer total_count from here instead of count(*), which reads every index entry of the owner: the
 * cost of a page then grows with the page, not with the table.
 */
export function rowCounts(dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('row_counts')
        .addColumn('tbl', 'text', (c) => c.notNull())
        .addColumn('owner_key', 'text', (c) => c.notNull()) // '' for objects without an owner (library drives)
        .addColumn('n', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('row_counts_pk', ['tbl', 'owner_key'])
        .execute();
      for (const t of COUNTED_TABLES) await countRows(db, dialect, t);
    },
  };
}
