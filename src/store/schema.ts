import type { ColumnType, Generated, Kysely } from 'kysely';

/**
 * The database's tables and their columns, as the migrations in migrations/ leave them (each column names the
 * migration that added it when that is not the table's own). Kysely checks every query of the store against it.
 */

/** A column the database fills when an insert leaves it out (a default, an auto-increment). */
type Defaulted<T> = ColumnType<T, T | undefined, T>;

/** The columns of every document table (001 createDocTable): the wire object in `data`, and what lists use. */
export interface DocColumns {
  seq: Generated<number>;
  uuid: string;
  owner: string | null;
  name: Defaulted<string>;
  status: Defaulted<string>;
  data: string;
  version: Defaulted<number>;
  created_at: string;
  updated_at: string;
}

export interface ServersTable extends DocColumns {
  host: string | null;
  runtime: string | null;
  cpu: number | null;
  mem: number | null;
}

export interface DrivesTable extends DocColumns {
  media: string | null;
  size: number | null;
}

export interface VlansTable extends DocColumns {
  slot: number;
}

export interface SubscriptionsTable extends DocColumns {
  resource: string | null;
  subscribed_object: string | null;
}

export interface JobsTable extends DocColumns {
  parent: string | null;
}

export interface SnapshotsTable extends DocColumns {
  drive: string | null;
}

export interface UsersTable {
  uuid: string;
  email: string;
  password_hash: string;
  data: Defaulted<string>;
  created_at: string;
}

export interface TokensTable {
  token_hash: string;
  user_uuid: string;
  /** api | session | async */
  kind: string;
  csrf: string | null;
  expires_at: string | null;
  created_at: string;
}

export interface ResourceTagsTable {
  tag_uuid: string;
  resource_type: string;
  resource_uuid: string;
}

export interface ServerDrivesTable {
  server_uuid: string;
  drive_uuid: string;
}

export interface HostsTable {
  name: string;
  driver: string;
  cpu: number;
  mem: number;
  public_host: string;
  /** the process that runs this host */
  agent: string;
  state: string;
  heartbeat_at: string;
  /** 013 */
  drained: Defaulted<number>;
}

export interface OperationsTable {
  id: Generated<number>;
  server_uuid: string;
  host: string;
  kind: string;
  payload: Defaulted<string>;
  /** pending | running | done | failed */
  state: string;
  claimed_by: string | null;
  claimed_at: string | null;
  attempts: Defaulted<number>;
  error: string | null;
  result: string | null;
  created_at: string;
  updated_at: string;
}

export interface DhcpLeasesTable {
  ip: string;
  server_uuid: string;
  mac: string;
  created_at: string;
}

export interface RateCountersTable {
  bucket: string;
  count: number;
  window: number;
}

export interface GlobalContextsTable {
  user_uuid: string;
  data: string;
  updated_at: string;
}

export interface JobResourcesTable {
  job_uuid: string;
  resource_uuid: string;
}

export interface AclGranteesTable {
  acl_uuid: string;
  user_uuid: string;
}

export interface AclTagsTable {
  acl_uuid: string;
  tag_uuid: string;
}

export interface AuditLogTable {
  id: Generated<number>;
  owner: string;
  actor: string | null;
  resource_uuid: Defaulted<string>;
  category: string;
  action: string;
  details: Defaulted<string>;
  success: Defaulted<number>;
  error_message: Defaulted<string>;
  error_point: string | null;
  error_type: string | null;
  timestamp: string;
}

export interface RowCountsTable {
  tbl: string;
  /** '' for objects without an owner (library drives) */
  owner_key: string;
  n: number;
}

export interface UploadChunksTable {
  drive_uuid: string;
  chunk_number: number;
  chunk_size: number;
}

export interface CredentialChangesTable {
  id: number;
  changes: number;
}

export interface NicFirewallPoliciesTable {
  server_uuid: string;
  mac: string;
  policy_uuid: string;
}

/** 015: what a server's document names (a NIC's IP or VLAN, a public key); mirrors the documents, see the migration. */
export interface ServerReferencesTable {
  server_uuid: string;
  /** 'ip' | 'vlan' | 'pubkey' */
  kind: string;
  ref: string;
  /** the NIC's MAC; '' for a key */
  mac: string;
  /** an IP's conf (static, dhcp, manual); '' otherwise */
  conf: string;
}

export interface StorageMarkersTable {
  node: string;
  token: string;
  dir: string;
  written_at: string;
}

/** 014: grantees named by an address no user has yet (see UserRepo.granteeByEmail). */
export interface PendingGranteesTable {
  email: string;
  uuid: string;
  created_at: string;
}

export interface Database {
  users: UsersTable;
  tokens: TokensTable;
  servers: ServersTable;
  drives: DrivesTable;
  tags: DocColumns;
  keypairs: DocColumns;
  resource_tags: ResourceTagsTable;
  server_drives: ServerDrivesTable;
  hosts: HostsTable;
  operations: OperationsTable;
  dhcp_leases: DhcpLeasesTable;
  rate_counters: RateCountersTable;
  ips: DocColumns;
  vlans: VlansTable;
  subscriptions: SubscriptionsTable;
  global_contexts: GlobalContextsTable;
  jobs: JobsTable;
  job_resources: JobResourcesTable;
  snapshots: SnapshotsTable;
  acls: DocColumns;
  acl_grantees: AclGranteesTable;
  acl_tags: AclTagsTable;
  audit_log: AuditLogTable;
  row_counts: RowCountsTable;
  upload_chunks: UploadChunksTable;
  credential_changes: CredentialChangesTable;
  fwpolicies: DocColumns;
  nic_firewall_policies: NicFirewallPoliciesTable;
  remotesnapshots: SnapshotsTable;
  storage_markers: StorageMarkersTable;
  server_references: ServerReferencesTable;
  pending_grantees: PendingGranteesTable;
}

/** The name of a document table (one of createDocTable's). */
export type DocTableName =
  'servers' | 'drives' | 'tags' | 'keypairs' | 'ips' | 'vlans' | 'subscriptions' | 'jobs' | 'snapshots' | 'acls' | 'fwpolicies' | 'remotesnapshots';

/** The store's handle on the database, in or out of a transaction. */
export type Db = Kysely<Database>;
