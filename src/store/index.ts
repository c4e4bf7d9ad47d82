import { sql, type Insertable, type Kysely } from 'kysely';
import { openDialect, type Dialect } from './dialect/index.ts';
import { COUNTED_TABLES, DocumentTable } from './documents.ts';
import { overQuota, type Quotas } from '../domain/quotas.ts';
import { migrateToLatest } from './migrate.ts';
import { UserRepo } from './users.ts';
import { OperationRepo } from './operations.ts';
import { HostRepo } from './hosts.ts';
import { LeaseRepo } from './leases.ts';
import { ServerTable } from './servers.ts';
import { GlobalContextRepo } from './global-context.ts';
import { AuditLogRepo } from './audit-log.ts';
import { UploadChunkRepo } from './upload-chunks.ts';
import { AclTable } from './acls.ts';
import { TagTable } from './tags.ts';
import { DriveTable } from './drives.ts';
import { SharedLoginCounts } from './login-counts.ts';
import { Prepared } from './prepared.ts';
import { FwPolicyTable, type FwPolicyDoc } from './fwpolicies.ts';
import { IpTable, SubscriptionTable, VlanTable } from './networks.ts';
import { SnapshotTable } from './snapshots.ts';
import { JobTable } from './jobs.ts';
import type { AuditLogTable, Database, DocTableName } from './schema.ts';

export type { TagDoc } from './tags.ts';

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

export type { FwPolicyDoc } from './fwpolicies.ts';

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

export type { AclDoc } from './acls.ts';

/** All repositories over one database. */
export class Store {
  readonly servers: ServerTable;
  readonly drives: DriveTable;
  readonly tags: TagTable;
  readonly keypairs: DocumentTable<KeypairDoc>;
  readonly ips: IpTable;
  readonly vlans: VlanTable;
  readonly subscriptions: SubscriptionTable;
  readonly jobs: JobTable;
  readonly snapshots: SnapshotTable;
  readonly acls: AclTable;
  readonly fwpolicies: FwPolicyTable;
  readonly remotesnapshots: DocumentTable<RemoteSnapshotDoc>;
  readonly users: UserRepo;
  readonly operations: OperationRepo;
  readonly hosts: HostRepo;
  readonly leases: LeaseRepo;
  readonly globalContexts: GlobalContextRepo;
  readonly auditLog: AuditLogRepo;
  readonly uploadChunks: UploadChunkRepo;
  /** The failed-login counts every API node shares, when several serve one database; null for a single node's. */
  readonly sharedLoginCounts: SharedLoginCounts | null;

  constructor(readonly dialect: Dialect) {
    this.drives = new DriveTable(dialect);
    this.tags = new TagTable(dialect);
    this.keypairs = new DocumentTable(dialect, 'keypairs', 'keypairs', (d) => ({ name: d.name }));
    this.ips = new IpTable(dialect);
    this.vlans = new VlanTable(dialect);
    this.subscriptions = new SubscriptionTable(dialect);
    this.jobs = new JobTable(dialect);
    this.snapshots = new SnapshotTable(dialect);
    this.acls = new AclTable(dialect);
    this.fwpolicies = new FwPolicyTable(dialect);
    const remoteColumns = (d: RemoteSnapshotDoc) => ({ name: d.name, drive: d.drive });
    this.remotesnapshots = new DocumentTable(dialect, 'remotesnapshots', 'remotesnapshots', remoteColumns, new Set(['name', 'uuid', 'status', 'drive']));
    this.users = new UserRepo(dialect);
    this.operations = new OperationRepo(dialect);
    this.servers = new ServerTable(dialect, this.operations);
    this.hosts = new HostRepo(dialect);
    this.leases = new LeaseRepo(dialect);
    this.globalContexts = new GlobalContextRepo(dialect);
    this.auditLog = new AuditLogRepo(dialect);
    this.uploadChunks = new UploadChunkRepo(dialect);
    this.sharedLoginCounts = dialect.shared ? new SharedLoginCounts(dialect.db) : null;
  }

  private quotas: Quotas | null = null;

  /**
   * Holds every account to `quotas`: each insert of an owned server, drive, IP, VLAN or subscription is checked in
   * its transaction, whichever command makes it (create, clone, upload, buying an address). The account's row is
   * locked first, so two concurrent creates of one account cannot both pass on PostgreSQL.
   */
  enforceQuotas(quotas: Quotas): void {
    this.quotas = quotas;
    const hold = <T extends { uuid: string }>(table: DocumentTable<T>, key: keyof Quotas, what: string) => {
      table.beforeInsert = async (owner, doc, trx) => {
        await this.lockAccount(owner, trx);
        const limit = quotas[key];
        if (limit > 0 && (await this.held(table.table, owner, trx)) + 1 > limit) throw overQuota(key, limit, what);
        if ((table as object) === this.drives) await this.checkDriveBytes(owner, Number((doc as { size?: number }).size ?? 0), trx);
      };
    };
    hold(this.servers, 'servers', 'servers');
    hold(this.drives, 'drives', 'drives');
    hold(this.ips, 'ips', 'IP addresses');
    hold(this.vlans, 'vlans', 'VLANs');
    hold(this.subscriptions, 'subscriptions', 'subscriptions');
  }

  /** The firewall policy of each NIC of a server that has one, by MAC. */
  nicPolicies(serverUuid: string, trx: Kysely<Database> = this.db): Promise<Map<string, FwPolicyDoc>> {
    return this.fwpolicies.ofServerNics(serverUuid, trx);
  }

  /** The servers one of whose NICs uses firewall policy `uuid`. */
  serversUsingPolicy(uuid: string, trx: Kysely<Database> = this.db): Promise<string[]> {
    return this.fwpolicies.serversUsing([uuid], trx);
  }

  /**
   * Adds `chunk` to a rate counter's count in `window` (a counter of an older window starts again from `chunk`), in
   * one statement every API node may run at once; returns the count after it.
   */
  async bumpRateCounter(bucket: string, chunk: number, window: number): Promise<number> {
    const r = await sql<{ count: number }>`
      INSERT INTO rate_counters (bucket, count, "window") VALUES (${bucket}, ${chunk}, ${window})
      ON CONFLICT (bucket) DO UPDATE SET
        count = CASE WHEN rate_counters."window" = ${window} THEN rate_counters.count + ${chunk} ELSE ${chunk} END,
        "window" = ${window}
      RETURNING count`.execute(this.db);
    return Number(r.rows[0]!.count);
  }

  /** Appends one entry to an account's audit log (in the transaction that made the change it reports). */
  appendAudit(entry: Insertable<AuditLogTable>, trx: Kysely<Database> = this.db): Promise<void> {
    return this.auditLog.append(entry, trx);
  }

  /** Each quota with what `owner` holds against it (0 as a limit: none). */
  async quotaUse(owner: string): Promise<Record<string, { limit: number; held: number }>> {
    const q = this.quotas;
    if (!q) return {};
    const db = this.db;
    const bytes = await db
      .selectFrom('drives')
      .select((eb) => eb.fn.sum<number>('size').as('bytes'))
      .where('owner', '=', owner)
      .executeTakeFirst();
    return {
      servers: { limit: q.servers, held: await this.held('servers', owner, db) },
      drives: { limit: q.drives, held: await this.held('drives', owner, db) },
      drive_bytes: { limit: q.driveBytes, held: Number(bytes?.bytes ?? 0) },
      ips: { limit: q.ips, held: await this.held('ips', owner, db) },
      vlans: { limit: q.vlans, held: await this.held('vlans', owner, db) },
      subscriptions: { limit: q.subscriptions, held: await this.held('subscriptions', owner, db) },
    };
  }

  /** Whether `owner`'s drives may grow by `adding` bytes (a new drive, a resize); throws the quota's refusal if not. */
  async checkDriveBytes(owner: string, adding: number, trx: Kysely<Database>): Promise<void> {
    const limit = this.quotas?.driveBytes ?? 0;
    if (limit <= 0 || adding <= 0) return;
    const row = await trx
      .selectFrom('drives')
      .select((eb) => eb.fn.sum<number>('size').as('bytes'))
      .where('owner', '=', owner)
      .executeTakeFirst();
    if (Number(row?.bytes ?? 0) + adding > limit) throw overQuota('driveBytes', limit, 'bytes');
  }

  /** The owners of `uuids` in a document table (missing rows are left out). */
  async ownersOf(table: DocTableName, uuids: string[], trx: Kysely<Database> = this.db): Promise<Array<{ uuid: string; owner: string | null }>> {
    if (uuids.length === 0) return [];
    return trx
      .selectFrom(table)
      .select(['uuid', 'owner'])
      .where('uuid', 'in', [...new Set(uuids)])
      .execute();
  }

  /** How many objects of a document table `owner` holds (every row, whatever its status). */
  async countOwned(table: DocTableName, owner: string, trx: Kysely<Database> = this.db): Promise<number> {
    const r = await trx
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('owner', '=', owner)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** How many snapshots a drive has, or an account holds. */
  async snapshotCount(of: { drive: string } | { owner: string }, trx: Kysely<Database> = this.db): Promise<number> {
    const r = await trx
      .selectFrom('snapshots')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .$call((q) => ('drive' in of ? q.where('drive', '=', of.drive) : q.where('owner', '=', of.owner)))
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** The snapshots (or remote snapshots) of a drive, oldest first, with their owners. */
  async snapshotsOfDrive(
    kind: 'snapshots' | 'remotesnapshots',
    drive: string,
    trx: Kysely<Database> = this.db,
  ): Promise<Array<{ uuid: string; owner: string | null }>> {
    return trx.selectFrom(kind).select(['uuid', 'owner']).where('drive', '=', drive).orderBy('seq').execute();
  }

  // Prepared, so on SQLite it reads beside a batch's open transaction instead of waiting for it.
  private readonly anyUser = new Prepared((db) => db.selectFrom('users').select('uuid').limit(1));

  /** Reads one row: throws when the database does not answer (what a health check asks). */
  async alive(): Promise<void> {
    await this.anyUser.execute(this.db);
  }

  private async lockAccount(owner: string, trx: Kysely<Database>): Promise<void> {
    await this.dialect.lockRows(trx.selectFrom('users').select('uuid').where('uuid', '=', owner)).execute();
  }

  private async held(table: DocTableName, owner: string, trx: Kysely<Database>): Promise<number> {
    if (COUNTED_TABLES.includes(table)) {
      const r = await trx.selectFrom('row_counts').select('n').where('tbl', '=', table).where('owner_key', '=', owner).executeTakeFirst();
      return Number(r?.n ?? 0);
    }
    let q = trx
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('owner', '=', owner);
    if (table === 'subscriptions') q = q.where('status', '!=', 'expired');
    return Number((await q.executeTakeFirst())?.n ?? 0);
  }

  get db(): Kysely<Database> {
    return this.dialect.db;
  }

  /** Runs `fn` in one transaction: all of its writes land, or none. */
  async transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
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
    // A second process on a serving node's SQLite file (an operator's `opensigma hosts undrain`) checks migrations in a
    // transaction while the node writes its heartbeats; one that loses that race gets SQLITE_BUSY at once, not after
    // busy_timeout, and crashed the command. The migrator's transaction rolled back whole: running it again is safe.
    for (let attempt = 1; ; attempt++) {
      try {
        await migrateToLatest(dialect);
        break;
      } catch (e) {
        if (attempt >= 5 || !dialect.isConflict(e)) throw e;
        await new Promise((r) => setTimeout(r, 25 * attempt));
      }
    }
    return new Store(dialect);
  }

  close(): Promise<void> {
    return this.dialect.close();
  }
}
