import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';

/**
 * A page of an owner's servers can be checked against what an API node already rendered from the index alone: the
 * documents of the rows that did not change are not read.
 */
export function serverPageKeys(_dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await db.schema.createIndex('servers_owner_page_keys').ifNotExists().on('servers').columns(['owner', 'seq', 'uuid', 'version', 'status']).execute();
    },
  };
}
