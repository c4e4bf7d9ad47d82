import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';

/**
 * One counter, bumped by every password change: API nodes cache verified Basic credentials, and a node that sees the
 * counter move (another process changed a password) drops what it cached before trusting it again.
 */
export function credentialChanges(_dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('credential_changes')
        .ifNotExists()
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('changes', 'integer', (c) => c.notNull())
        .execute();
      await db.insertInto('credential_changes').values({ id: 1, changes: 0 }).execute();
    },
  };
}
