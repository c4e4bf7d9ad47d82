import { sql, type Kysely } from 'kysely';
import type { ServerDef } from '../domain/server-definition.ts';
import { EVENTS, allows, type ServerEvent, type ServerStatus } from '../domain/server-lifecycle.ts';
import type { Dialect } from './dialect/index.ts';
import { DocumentTable, type Stored } from './documents.ts';
import type { OperationRepo } from './operations.ts';
import type { Database } from './schema.ts';

const now = () => new Date().toISOString();

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
    return super.update(doc, opts, trx);
  }

  /** The servers placed on `host` (whatever their status), with what reconciliation compares with the driver. */
  async onHost(host: string, trx: Kysely<Database> = this.dialect.db) {
    return trx.selectFrom('servers').select(['uuid', 'status', 'owner', 'runtime', 'host']).where('host', '=', host).execute();
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
