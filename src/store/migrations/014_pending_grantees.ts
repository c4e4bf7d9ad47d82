import type { Kysely } from 'kysely';

/**
 * Grantees named by an email that no user has yet. An ACL granted to such an address answers exactly as one granted
 * to a user would (the uuid it shows is this row's, the same for every ACL), so a grant cannot be used to find out
 * which addresses have accounts; a user later created with the address takes this uuid, and with it the grants.
 */
export function pendingGrantees() {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('pending_grantees')
        .addColumn('email', 'text', (c) => c.primaryKey())
        .addColumn('uuid', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
  };
}
