import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';
import { createDocTable } from './001_initial.ts';

/**
 * Firewall policies, and which NIC uses which: a NIC's `firewall_policy` lives in its server's document, and this
 * table mirrors it so that a policy's `servers` (and the policy of one NIC) are one indexed query, not a scan of
 * every server document.
 */
export function firewallPolicies(dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await createDocTable(db, dialect, 'fwpolicies');
      await db.schema
        .createTable('nic_firewall_policies')
        .ifNotExists()
        .addColumn('server_uuid', 'text', (c) => c.notNull())
        .addColumn('mac', 'text', (c) => c.notNull())
        .addColumn('policy_uuid', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('nic_firewall_policies_pk', ['server_uuid', 'mac'])
        .execute();
      await db.schema.createIndex('nic_firewall_policies_policy').ifNotExists().on('nic_firewall_policies').columns(['policy_uuid', 'server_uuid']).execute();
    },
  };
}
