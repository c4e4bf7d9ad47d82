import type { Kysely } from 'kysely';
import { openDialect, type Dialect } from './dialect/index.ts';
import { DocumentTable } from './documents.ts';
import { migrateToLatest } from './migrate.ts';
import type { ServerDef } from '../domain/server-definition.ts';
import type { DriveDoc } from '../domain/drive-definition.ts';
import { UserRepo } from './users.ts';
import { OperationRepo } from './operations.ts';
import { HostRepo } from './hosts.ts';

export interface TagDoc {
  uuid: string;
  name: string;
  meta: Record<string, string>;
}

export interface KeypairDoc {
  uuid: string;
  name: string;
  meta: Record<string, string>;
  public_key: string;
  private_key: string;
  fingerprint: string;
}

/** A public IPv4 address an account holds; uuid is the address. */
export interface IpDoc {
  uuid: string;
  meta: Record<string, string>;
  tags: string[];
  subscription: number | null;
}

/** A private network an account holds; slot is its number in the operator's VLAN pool. */
export interface VlanDoc {
  uuid: string;
  meta: Record<string, string>;
  tags: string[];
  subscription: number | null;
  slot: number;
}

export interface SubscriptionDoc {
  uuid: string;
  resource: string;
  amount: string;
  start_time: string;
  end_time: string;
  auto_renew: boolean;
  subscribed_object: string | null;
  price: string;
  /** ids of the subscriptions this one was extended into, oldest first (every link of a chain lists those after it) */
  descendants: number[];
  /** id of the first subscription of the chain this one extends */
  ancestor?: number;
}

export interface JobDoc {
  uuid: string;
  operation: string;
  /** resource URIs, source first */
  resources: string[];
  data: { progress: number } & Record<string, unknown>;
  created: string;
  last_modified: string;
}

export interface SnapshotDoc {
  uuid: string;
  name: string;
  meta: Record<string, string>;
  drive: string;
  tags: string[];
  timestamp: string;
  allocated_size: number | null;
  /** The drive's definition when the snapshot was taken: what a clone of it starts from. */
  source: Record<string, unknown>;
}

export interface RemoteSnapshotDoc {
  uuid: string;
  name: string;
  meta: Record<string, string>;
  drive: string;
  tags: string[];
  timestamp: string;
  /** when status last changed, in the timestamp's format */
  last_state_change: string;
  location: string;
  allocated_size: number;
  /** The drive's definition when the copy was taken: what a clone of it starts from, and what drive_meta shows. */
  source: Record<string, unknown>;
}

export interface AclDoc {
  uuid: string;
  name: string;
  meta: Record<string, string>;
  grantees: Array<{ uuid: string; email: string | null }>;
  rules: string[];
  tags: string[];
}

/** All repositories over one database. */
export class Store {
  readonly servers: DocumentTable<ServerDef>;
  readonly drives: DocumentTable<DriveDoc>;
  readonly tags: DocumentTable<TagDoc>;
  readonly keypairs: DocumentTable<KeypairDoc>;
  readonly ips: DocumentTable<IpDoc>;
  readonly vlans: DocumentTable<VlanDoc>;
  readonly subscriptions: DocumentTable<SubscriptionDoc>;
  readonly jobs: DocumentTable<JobDoc>;
  readonly snapshots: DocumentTable<SnapshotDoc>;
  readonly acls: DocumentTable<AclDoc>;
  readonly remotesnapshots: DocumentTable<RemoteSnapshotDoc>;
  readonly users: UserRepo;
  readonly operations: OperationRepo;
  readonly hosts: HostRepo;

  constructor(readonly dialect: Dialect) {
    this.servers = new DocumentTable(dialect, 'servers', 'servers', (d) => ({ name: d.name, cpu: d.cpu, mem: d.mem }), undefined, ['host', 'runtime']);
    this.drives = new DocumentTable(dialect, 'drives', 'drives', (d) => ({ name: d.name, media: d.media, size: d.size }));
    this.tags = new DocumentTable(dialect, 'tags', 'tags', (d) => ({ name: d.name }));
    this.keypairs = new DocumentTable(dialect, 'keypairs', 'keypairs', (d) => ({ name: d.name }));
    // IPs and VLANs have no name field; the name filter matches meta.name, which is how clients name them.
    this.ips = new DocumentTable(dialect, 'ips', 'ips', (d) => ({ name: d.meta.name ?? '' }));
    this.vlans = new DocumentTable(dialect, 'vlans', 'vlans', (d) => ({ name: d.meta.name ?? '', slot: d.slot }));
    this.subscriptions = new DocumentTable(dialect, 'subscriptions', 'subscriptions', (d) => ({ resource: d.resource, subscribed_object: d.subscribed_object }), new Set(['uuid', 'status', 'resource', 'subscribed_object']));
    this.jobs = new DocumentTable(dialect, 'jobs', 'jobs', () => ({}), new Set(['uuid', 'status', 'updated_at']));
    this.snapshots = new DocumentTable(dialect, 'snapshots', 'snapshots', (d) => ({ name: d.name, drive: d.drive }), new Set(['name', 'uuid', 'status', 'drive']));
    this.acls = new DocumentTable(dialect, 'acls', 'acls', (d) => ({ name: d.name }));
    const remoteColumns = (d: RemoteSnapshotDoc) => ({ name: d.name, drive: d.drive });
    this.remotesnapshots = new DocumentTable(dialect, 'remotesnapshots', 'remotesnapshots', remoteColumns, new Set(['name', 'uuid', 'status', 'drive']));
    this.users = new UserRepo(dialect);
    this.operations = new OperationRepo(dialect);
    this.hosts = new HostRepo(dialect);
  }

  get db(): Kysely<any> {
    return this.dialect.db;
  }

  /** Runs `fn` in one transaction: all of its writes land, or none. */
  async transaction<T>(fn: (trx: Kysely<any>) => Promise<T>): Promise<T> {
    // A transaction that lost a conflict with a concurrent one (e.g. a deadlock between two starts locking hosts)
    // was rolled back whole, so running it again is safe; the client never sees the conflict.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute(fn);
      } catch (e) {
        if (attempt >= 5 || !this.dialect.isConflict(e)) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      }
    }
  }

  static async open(databaseUrl: string | null, dataDir: string): Promise<Store> {
    const dialect = await openDialect(databaseUrl, dataDir);
    await migrateToLatest(dialect);
    return new Store(dialect);
  }

  close(): Promise<void> {
    return this.dialect.close();
  }
}
