import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';

/**
 * Operations are also looked up by server (superseding older power operations after each one, a stop already under
 * way) and by the agent that claimed them; without these indexes each lookup read the whole table.
 */
export function operationLookups(_dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await db.schema.createIndex('operations_server_state').ifNotExists().on('operations').columns(['server_uuid', 'state']).execute();
      await db.schema.createIndex('operations_claimed_by').ifNotExists().on('operations').columns(['claimed_by', 'state']).execute();
    },
  };
}
