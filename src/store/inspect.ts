import { sql } from 'kysely';
import type { Dialect } from './dialect/index.ts';

/**
 * What `opensigma doctor` reads of a node's database. It runs before the schema may be migrated, so these work on
 * the dialect alone, not on a Store.
 */

/** The database's clock, in ms since the epoch (PostgreSQL only: nodes compare times written by each other). */
export async function databaseClock(dialect: Dialect): Promise<number> {
  const row = (await sql<{ t: number }>`select (extract(epoch from clock_timestamp()) * 1000)::float8 as t`.execute(dialect.db)).rows[0]!;
  return Number(row.t);
}

/** Whether the database answers at all. */
export async function ping(dialect: Dialect): Promise<void> {
  await sql`select 1`.execute(dialect.db);
}

/** Every address and VLAN slot held: bought IPs, DHCP leases and VLAN slots. */
export async function heldAddresses(dialect: Dialect): Promise<{ ips: string[]; leases: string[]; slots: number[] }> {
  const db = dialect.db;
  return {
    ips: (await db.selectFrom('ips').select('uuid').execute()).map((r) => r.uuid),
    leases: (await db.selectFrom('dhcp_leases').select('ip').execute()).map((r) => r.ip),
    slots: (await db.selectFrom('vlans').select('slot').execute()).map((r) => Number(r.slot)),
  };
}

/** Records this node's storage marker (one row per node, the latest wins) and returns the other nodes' markers. */
export async function exchangeStorageMarkers(
  dialect: Dialect,
  marker: { node: string; token: string; dir: string },
): Promise<Array<{ node: string; token: string; dir: string }>> {
  const now = new Date().toISOString();
  await dialect.db
    .insertInto('storage_markers')
    .values({ ...marker, written_at: now })
    .onConflict((oc) => oc.column('node').doUpdateSet({ token: marker.token, dir: marker.dir, written_at: now }))
    .execute();
  return dialect.db.selectFrom('storage_markers').select(['node', 'token', 'dir']).where('node', '!=', marker.node).execute();
}
