import { sql, type Kysely } from 'kysely';
import type { ServerDef } from '../domain/server-definition.ts';
import { EVENTS, ON_HOST, TENDED, allows, type ServerEvent, type ServerStatus } from '../domain/server-lifecycle.ts';
import type { Dialect } from './dialect/index.ts';
import { DocumentTable, type Stored } from './documents.ts';
import type { OperationRepo } from './operations.ts';
import type { Database } from './schema.ts';

const now = () => new Date().toISOString();

type Reference = { server_uuid: string; kind: 'ip' | 'vlan' | 'pubkey'; ref: string; mac: string; conf: string };

/** The rows of server_references for a definition (migration 015 fills them the same way for older servers). */
function referencesOf(def: ServerDef): Reference[] {
  const rows = new Map<string, Reference>();
  const add = (kind: Reference['kind'], ref: string, mac: string, conf: string) =>
    rows.set(`${kind} ${ref} ${mac}`, { server_uuid: def.uuid, kind, ref, mac, conf });
  for (const n of def.nics ?? []) {
    if (n.vlan) add('vlan', n.vlan, n.mac, '');
    for (const c of [n.ip_v4_conf, n.ip_v6_conf]) if (c?.ip) add('ip', c.ip, n.mac, c.conf ?? '');
  }
  for (const k of def.pubkeys ?? []) add('pubkey', k, '', '');
  return [...rows.values()];
}

export interface EventOptions {
  /** the status the caller read (the write applies only while the server is still in it); default: any the event allows */
  seen?: string;
  /** the version the caller read: the write applies only over it */
  version?: number;
  /** the document to write with the status (a definition the caller changed), written only over `version` */
  doc?: ServerDef;
  /** other columns written with the status (host, runtime) */
  columns?: Record<string, unknown>;
  /** for events that queue an operation: the host that runs it, and what it is told */
  host?: string;
  payload?: Record<string, unknown>;
  /** applies only while this host operation is still running: an outcome of an operation a later one superseded is stale */
  whileOperation?: number;
}

/**
 * The servers' table. Every change of a server's status goes through applyEvent, which reads what to do from the
 * lifecycle table in domain/server-lifecycle.ts.
 */
export class ServerTable extends DocumentTable<ServerDef> {
  constructor(
    dialect: Dialect,
    private readonly operations: OperationRepo,
  ) {
    super(dialect, 'servers', 'servers', (d) => ({ name: d.name, cpu: d.cpu, mem: d.mem }), undefined, ['host', 'runtime']);
  }

  /**
   * Moves a server by `event` in one write: the next status from the table, only from a status the table allows
   * (and the one the caller saw), only over the version the caller read when it gives one; a server that leaves its
   * host has its host and runtime cleared. The event's host operation is queued in the same transaction. Returns
   * the queued operation's id (0 when it queues none), or null when the server was not in a state to take it.
   * Publishing the change is the caller's, once its transaction has committed.
   */
  async applyEvent(uuid: string, event: ServerEvent, opts: EventOptions = {}, trx: Kysely<Database> = this.dialect.db): Promise<number | null> {
    const r = EVENTS[event] as { from: readonly ServerStatus[]; to?: ServerStatus; op?: string; leavesHost?: boolean };
    if (opts.seen !== undefined && !allows(event, opts.seen)) return null;
    const from = opts.seen !== undefined ? [opts.seen] : [...r.from];
    const columns = { ...(r.leavesHost ? { host: null, runtime: null } : {}), ...(opts.columns ?? {}) };
    if (r.to !== undefined || opts.doc || Object.keys(columns).length) {
      const set: Record<string, unknown> = { version: sql`version + 1`, updated_at: now(), ...columns };
      if (r.to !== undefined) set.status = r.to;
      if (opts.doc) Object.assign(set, { data: JSON.stringify(opts.doc), ...this.columns(opts.doc) });
      let q = trx.updateTable('servers').set(set).where('uuid', '=', uuid).where('status', 'in', from);
      if (opts.version !== undefined) q = q.where('version', '=', opts.version);
      const op = opts.whileOperation;
      if (op !== undefined) q = q.where((eb) => eb.exists(eb.selectFrom('operations').select('id').where('id', '=', op).where('state', '=', 'running')));
      const res = await q.executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return null;
      if (opts.doc) await this.writeReferences(opts.doc, trx);
    } else {
      // An event that changes nothing of the row (restart, consoles) still applies only in a state that allows it.
      const row = await trx.selectFrom('servers').select('status').where('uuid', '=', uuid).executeTakeFirst();
      if (!row || !from.includes(String(row.status))) return null;
    }
    if (!r.op) return 0;
    if (!opts.host) throw new Error(`event ${event} queues ${r.op} but no host was given`);
    return this.operations.enqueue(trx, { server_uuid: uuid, host: opts.host, kind: r.op as never, payload: opts.payload });
  }

  /** Statuses change only through applyEvent, which reads the lifecycle table; a direct write would bypass it. */
  override async transition(): Promise<boolean> {
    throw new Error('a server status changes only through applyEvent');
  }

  /** Writes a definition (only while the server is in `expectedStatus`, when given); never its status. */
  override async update(
    doc: ServerDef,
    opts: { expectedVersion?: number; expectedStatus?: string[] } = {},
    trx: Kysely<Database> = this.dialect.db,
  ): Promise<boolean> {
    if ('status' in opts) throw new Error('a server status changes only through applyEvent');
    const written = await super.update(doc, opts, trx);
    if (written) await this.writeReferences(doc, trx);
    return written;
  }

  override async insert(owner: string | null, doc: ServerDef, status: string, trx: Kysely<Database> = this.dialect.db): Promise<void> {
    await super.insert(owner, doc, status, trx);
    await this.writeReferences(doc, trx);
  }

  override async insertIfFree(owner: string | null, doc: ServerDef, status: string, trx: Kysely<Database> = this.dialect.db): Promise<boolean> {
    const inserted = await super.insertIfFree(owner, doc, status, trx);
    if (inserted) await this.writeReferences(doc, trx);
    return inserted;
  }

  override async delete(uuid: string, trx: Kysely<Database> = this.dialect.db): Promise<boolean> {
    await trx.deleteFrom('server_references').where('server_uuid', '=', uuid).execute();
    return super.delete(uuid, trx);
  }

  /** Writes which drives a server holds (server_drives), in the transaction that writes its document. */
  async writeAttachments(serverUuid: string, driveUuids: string[], trx: Kysely<Database>): Promise<void> {
    await this.dropAttachments(serverUuid, trx);
    if (driveUuids.length)
      await trx
        .insertInto('server_drives')
        .values(driveUuids.map((d) => ({ server_uuid: serverUuid, drive_uuid: d })))
        .execute();
  }

  /** Drops a server's server_drives rows (the drives' statuses are the caller's to refresh). */
  async dropAttachments(serverUuid: string, trx: Kysely<Database>): Promise<void> {
    await trx.deleteFrom('server_drives').where('server_uuid', '=', serverUuid).execute();
  }

  /** Rewrites what a server's document names, in the transaction that writes the document. */
  private async writeReferences(doc: ServerDef, trx: Kysely<Database>): Promise<void> {
    await trx.deleteFrom('server_references').where('server_uuid', '=', doc.uuid).execute();
    const rows = referencesOf(doc);
    if (rows.length) await trx.insertInto('server_references').values(rows).execute();
  }

  /** server_references again from every server document (after a saved state is loaded, which may predate it). */
  async rebuildReferences(trx: Kysely<Database>): Promise<void> {
    await trx.deleteFrom('server_references').execute();
    for (const r of await trx.selectFrom('servers').select('data').execute()) {
      const rows = referencesOf(JSON.parse(r.data) as ServerDef);
      if (rows.length) await trx.insertInto('server_references').values(rows).execute();
    }
  }

  /**
   * The servers naming `ref` (an IP, a VLAN, a key), oldest first; for an IP, those with one of `confs` only. One
   * indexed read of server_references.
   */
  async referencing(kind: Reference['kind'], ref: string, confs?: string[], trx: Kysely<Database> = this.dialect.db): Promise<string[]> {
    const rows = await trx
      .selectFrom('server_references as r')
      .innerJoin('servers as s', 's.uuid', 'r.server_uuid')
      .select('r.server_uuid')
      .distinct()
      .select('s.seq')
      .where('r.kind', '=', kind)
      .where('r.ref', '=', ref)
      .$if(confs !== undefined, (q) => q.where('r.conf', 'in', confs!))
      .orderBy('s.seq')
      .execute();
    return rows.map((r) => r.server_uuid);
  }

  /** Every static address any server names, with the oldest server naming it. */
  async staticHolders(trx: Kysely<Database> = this.dialect.db): Promise<Map<string, string>> {
    const rows = await trx
      .selectFrom('server_references as r')
      .innerJoin('servers as s', 's.uuid', 'r.server_uuid')
      .select(['r.ref', 'r.server_uuid'])
      .where('r.kind', '=', 'ip')
      .where('r.conf', '=', 'static')
      .orderBy('s.seq')
      .execute();
    const out = new Map<string, string>();
    for (const r of rows) if (!out.has(r.ref)) out.set(r.ref, r.server_uuid);
    return out;
  }

  /** The servers placed on `host` (whatever their status), with what reconciliation compares with the driver. */
  async onHost(host: string, trx: Kysely<Database> = this.dialect.db) {
    return trx.selectFrom('servers').select(['uuid', 'status', 'owner', 'runtime', 'host']).where('host', '=', host).execute();
  }

  /** The servers placed on `host` in a status its agent tends, with their owners. */
  async placedOn(host: string, trx: Kysely<Database> = this.dialect.db): Promise<Array<{ uuid: string; owner: string | null }>> {
    return trx.selectFrom('servers').select(['uuid', 'owner']).where('host', '=', host).where('status', 'in', TENDED).execute();
  }

  /** The servers of `owner` that a host holds (in a status with a guest), oldest first, with their hosts. */
  async onHostsOf(owner: string, trx: Kysely<Database> = this.dialect.db): Promise<Array<{ uuid: string; host: string }>> {
    return trx
      .selectFrom('servers')
      .select(['uuid', 'host'])
      .where('owner', '=', owner)
      .where('status', 'in', ON_HOST)
      .where('host', 'is not', null)
      .$narrowType<{ host: string }>()
      .orderBy('seq')
      .execute();
  }

  /** The running servers of `host` and their runtime. */
  async runningOn(host: string, trx: Kysely<Database> = this.dialect.db): Promise<Array<{ uuid: string; runtime: string | null }>> {
    return trx.selectFrom('servers').select(['uuid', 'runtime']).where('host', '=', host).where('status', '=', 'running').execute();
  }

  /**
   * Writes the runtimes of several running servers of `host` in one statement (the stats pass); a server that stopped
   * meanwhile keeps the runtime it lost. Not a definition change: the version stays.
   */
  async writeRuntimes(host: string, runtimes: Array<[uuid: string, runtime: string]>, trx: Kysely<Database> = this.dialect.db): Promise<void> {
    if (runtimes.length === 0) return;
    const runtime = sql<string>`case ${sql.ref('uuid')} ${sql.join(
      runtimes.map(([u, rt]) => sql`when ${u} then ${rt}`),
      sql` `,
    )} end`;
    await trx
      .updateTable('servers')
      .set({ runtime, updated_at: now() })
      .where(
        'uuid',
        'in',
        runtimes.map(([u]) => u),
      )
      .where('host', '=', host)
      .where('status', '=', 'running')
      .execute();
  }

  /** applyEvent for every server whose `host` is one of `hosts` (a host lost); returns the servers it moved. */
  async applyEventOnHosts(
    hosts: string[],
    event: ServerEvent,
    trx: Kysely<Database> = this.dialect.db,
  ): Promise<Array<{ uuid: string; owner: string | null }>> {
    const r = EVENTS[event] as { from: readonly ServerStatus[]; to?: ServerStatus };
    if (!r.to) throw new Error(`event ${event} changes no status`);
    return this.transitionWhere('host', hosts, [...r.from], r.to, trx);
  }
}

export type { Stored };
