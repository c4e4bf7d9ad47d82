import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';
import { createDocTable } from './001_initial.ts';

/**
 * Remote snapshots, hosts an operator drains, and the markers that tell whether nodes share their drive storage.
 *
 * Remote snapshots: copies of drives kept on other storage than the drives'. The table is named after the API's
 * path segment (`/remotesnapshots/`), as every document table is, so tags and ACLs reach it by the same name.
 */
export function multiNode(dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await createDocTable(db, dialect, 'remotesnapshots', (t) => t.addColumn('drive', 'text'));
      await db.schema.createIndex('remotesnapshots_drive').on('remotesnapshots').columns(['drive']).execute();
      // A drained host takes no new servers; those running there stay (opensigma hosts drain).
      await db.schema
        .alterTable('hosts')
        .addColumn('drained', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      // What `opensigma doctor` wrote into each node's storage dir, so another node can tell whether it sees the same one.
      await db.schema
        .createTable('storage_markers')
        .addColumn('node', 'text', (c) => c.primaryKey())
        .addColumn('token', 'text', (c) => c.notNull())
        .addColumn('dir', 'text', (c) => c.notNull())
        .addColumn('written_at', 'text', (c) => c.notNull())
        .execute();
    },
  };
}
