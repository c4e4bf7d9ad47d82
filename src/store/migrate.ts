import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from './dialect/index.ts';
import { initial } from './migrations/001_initial.ts';
import { networking } from './migrations/002_networking.ts';
import { resources } from './migrations/003_resources.ts';
import { rowCounts } from './migrations/004_row_counts.ts';
import { scaleout } from './migrations/005_scaleout.ts';
import { operationLookups } from './migrations/007_operation_lookups.ts';
import { uploadChunks } from './migrations/006_upload_chunks.ts';
import { credentialChanges } from './migrations/008_credential_changes.ts';
import { endedNetworkObjects } from './migrations/009_ended_network_objects.ts';
import { serverPageKeys } from './migrations/010_server_page_keys.ts';
import { firewallPolicies } from './migrations/011_firewall_policies.ts';
import { multiNode } from './migrations/013_multi_node.ts';
import { pendingGrantees } from './migrations/014_pending_grantees.ts';
import { serverReferences } from './migrations/015_server_references.ts';

/** The ordered list of migrations. Append, never edit a released one. */
export function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '001_initial': initial(dialect),
    '002_networking': networking(dialect),
    '003_resources': resources(dialect),
    '004_row_counts': rowCounts(dialect),
    '005_scaleout': scaleout(dialect),
    '006_upload_chunks': uploadChunks(dialect),
    '007_operation_lookups': operationLookups(dialect),
    '008_credential_changes': credentialChanges(dialect),
    '009_ended_network_objects': endedNetworkObjects(dialect),
    '010_server_page_keys': serverPageKeys(dialect),
    '011_firewall_policies': firewallPolicies(dialect),
    '013_multi_node': multiNode(dialect),
    '014_pending_grantees': pendingGrantees(),
    '015_server_references': serverReferences(dialect),
  };
}

/** Applies pending migrations. Kysely's migration lock makes two nodes starting at once safe. */
export async function migrateToLatest(dialect: Dialect): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(dialect) };
  // Engineers add migrations on parallel branches: a database that ran 003 before 002 landed must still accept 002.
  const migrator = new Migrator({ db: dialect.db, provider, allowUnorderedMigrations: true });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** The names of the migrations this database has not applied yet. */
export async function pendingMigrations(dialect: Dialect): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(dialect) };
  const all = await new Migrator({ db: dialect.db, provider, allowUnorderedMigrations: true }).getMigrations();
  return all.filter((m) => !m.executedAt).map((m) => m.name);
}
