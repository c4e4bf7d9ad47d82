import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';
import { createDocTable } from './001_initial.ts';

/** IPs and VLANs bought through subscriptions, and each account's global server context. */
export function networking(dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      // uuid is the address itself: its uniqueness is what keeps one address from being sold twice.
      await createDocTable(db, dialect, 'ips');
      // slot: which VLAN of the operator's pool this is, unique while held.
      await createDocTable(db, dialect, 'vlans', (t) => t.addColumn('slot', 'integer', (c: any) => c.notNull().unique()));
      // seq is the subscription's public numeric id.
      await createDocTable(db, dialect, 'subscriptions', (t) => t.addColumn('resource', 'text').addColumn('subscribed_object', 'text'));
      await db.schema
        .createTable('global_contexts')
        .addColumn('user_uuid', 'text', (c) => c.primaryKey())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  };
}
