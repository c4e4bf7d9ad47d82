import { sql } from 'kysely';
import type { ExpressionBuilder, Kysely, Selectable } from 'kysely';
import type { Dialect } from './dialect/index.ts';

import type { OperationKind } from '../domain/server-lifecycle.ts';
import type { Database, OperationsTable } from './schema.ts';

export type { OperationKind };

/** The notification channel on which a queue's growth wakes its agents; the payload names the host. */
export const OPS_CHANNEL = 'opensigma_ops';

export interface Operation {
  id: number;
  server_uuid: string;
  host: string;
  kind: OperationKind;
  payload: Record<string, unknown>;
  state: 'pending' | 'running' | 'done' | 'failed';
  claimed_by: string | null;
  attempts: number;
  error: string | null;
}

const now = () => new Date().toISOString();

// kind and state hold only what enqueue and the state changes below write.
function toOp(r: Selectable<OperationsTable>): Operation {
  return {
    ...r,
    kind: r.kind as OperationKind,
    state: r.state as Operation['state'],
    id: Number(r.id),
    attempts: Number(r.attempts),
    payload: JSON.parse(r.payload) as Record<string, unknown>,
  };
}

/** Durable host operations: written in the same transaction as the state change, claimed once by the host's agent. */
export class OperationRepo {
  constructor(private readonly dialect: Dialect) {}

  async enqueue(trx: Kysely<Database>, op: { server_uuid: string; host: string; kind: OperationKind; payload?: Record<string, unknown> }): Promise<number> {
    const t = now();
    const row = await trx
      .insertInto('operations')
      .values({ ...op, payload: JSON.stringify(op.payload ?? {}), state: 'pending', attempts: 0, created_at: t, updated_at: t })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(row.id);
  }

  /** Whether an operation of `kind` for the server, queued after `since`, is still pending or running. */
  async unfinishedSince(serverUuid: string, kind: OperationKind, since: string, trx: Kysely<Database> = this.dialect.db): Promise<boolean> {
    const op = await trx
      .selectFrom('operations')
      .select('id')
      .where('server_uuid', '=', serverUuid)
      .where('kind', '=', kind)
      .where('state', 'in', ['pending', 'running'])
      .where('created_at', '>', since)
      .executeTakeFirst();
    return !!op;
  }

  /**
   * Claims the oldest pending operations of these hosts for `agent`, in one statement (one round trip, no
   * transaction). Each operation is claimed by exactly one agent: concurrent claims skip each other's rows.
   */
  async claim(hosts: string[], agent: string, max = 20): Promise<Operation[]> {
    if (hosts.length === 0) return [];
    const db = this.dialect.db;
    const pending = this.dialect.claimRows(
      db.selectFrom('operations').select('id').where('state', '=', 'pending').where('host', 'in', hosts).orderBy('id').limit(max),
    );
    const rows = await db
      .updateTable('operations')
      .set({ state: 'running', claimed_by: agent, claimed_at: now(), attempts: sql`attempts + 1`, updated_at: now() })
      .where('id', 'in', pending)
      .where('state', '=', 'pending')
      .returningAll()
      .execute();
    return rows.map(toOp).sort((a, b) => a.id - b.id);
  }

  /**
   * Fails every unfinished operation of these hosts: their agent is gone, so nobody will do them. Returns the
   * failed operations, so their servers can be told.
   */
  async failForHosts(hosts: string[], reason: string, trx: Kysely<Database> = this.dialect.db): Promise<Operation[]> {
    if (hosts.length === 0) return [];
    const rows = await trx
      .updateTable('operations')
      .set({ state: 'failed', error: reason, updated_at: now() })
      .where('host', 'in', hosts)
      .where('state', 'in', ['pending', 'running'])
      .returningAll()
      .execute();
    return rows.map(toOp);
  }

  /**
   * Records the outcome of a running operation. With `supersede`, the same statement also fails the unfinished
   * operations of that server older than this one among `kinds`: a later one has decided its state.
   */
  async finish(
    id: number,
    state: 'done' | 'failed',
    error: string | null = null,
    result: Record<string, unknown> | null = null,
    trx: Kysely<Database> = this.dialect.db,
    supersede?: { server: string; kinds: OperationKind[] },
  ): Promise<void> {
    const mine = (eb: ExpressionBuilder<Database, 'operations'>) => eb.and([eb('id', '=', id), eb('state', '=', 'running')]); // a superseded operation stays failed
    const res = result ? JSON.stringify(result) : null;
    if (!supersede) {
      await trx.updateTable('operations').set({ state, error, result: res, updated_at: now() }).where(mine).execute();
      return;
    }
    await trx
      .updateTable('operations')
      .set({
        state: sql`case when id = ${id} then ${state} else 'failed' end`,
        error: sql`case when id = ${id} then ${error} else ${`superseded by operation ${id}`} end`,
        result: sql`case when id = ${id} then ${res} else result end`,
        updated_at: now(),
      })
      .where((eb) =>
        eb.or([
          mine(eb),
          eb.and([eb('server_uuid', '=', supersede.server), eb('id', '<', id), eb('kind', 'in', supersede.kinds), eb('state', 'in', ['pending', 'running'])]),
        ]),
      )
      .execute();
  }

  /** Puts an interrupted operation back in the queue, to be claimed again. */
  async requeue(id: number): Promise<void> {
    await this.dialect.db.updateTable('operations').set({ state: 'pending', claimed_by: null, updated_at: now() }).where('id', '=', id).execute();
  }

  async get(id: number): Promise<(Operation & { result: Record<string, unknown> | null }) | undefined> {
    const r = await this.dialect.db.selectFrom('operations').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? { ...toOp(r), result: r.result ? JSON.parse(r.result) : null } : undefined;
  }

  /** Operations `agent` claimed and has not finished. */
  async claimedBy(agent: string, hosts: string[]): Promise<Operation[]> {
    if (hosts.length === 0) return [];
    const rows = await this.dialect.db
      .selectFrom('operations')
      .selectAll()
      .where('claimed_by', '=', agent)
      .where('state', '=', 'running')
      .where('host', 'in', hosts)
      .orderBy('id')
      .execute();
    return rows.map(toOp);
  }

  /** Operations an agent had claimed but not finished: it died or restarted mid-way. */
  async unfinished(hosts: string[]): Promise<Operation[]> {
    if (hosts.length === 0) return [];
    const rows = await this.dialect.db.selectFrom('operations').selectAll().where('state', '=', 'running').where('host', 'in', hosts).orderBy('id').execute();
    return rows.map(toOp);
  }

  /** Starts queued for `hosts` that no agent claimed yet. */
  async pendingStarts(hosts: string[], trx: Kysely<Database> = this.dialect.db): Promise<Array<{ id: number; server_uuid: string; host: string }>> {
    if (hosts.length === 0) return [];
    return trx
      .selectFrom('operations')
      .select(['id', 'server_uuid', 'host'])
      .where('host', 'in', hosts)
      .where('state', '=', 'pending')
      .where('kind', '=', 'start')
      .execute();
  }

  /** Fails an operation still pending (none claimed it), with the reason. */
  async failPending(id: number, reason: string, trx: Kysely<Database> = this.dialect.db): Promise<void> {
    await trx
      .updateTable('operations')
      .set({ state: 'failed', error: reason, updated_at: new Date().toISOString() })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .execute();
  }

  /** The servers of `host` with an operation pending or running: reconciliation leaves them to it. */
  async serversBusyOn(host: string): Promise<string[]> {
    const rows = await this.dialect.db
      .selectFrom('operations')
      .select('server_uuid')
      .where('host', '=', host)
      .where('state', 'in', ['pending', 'running'])
      .execute();
    return rows.map((r) => r.server_uuid);
  }

  async pendingFor(serverUuid: string): Promise<Operation[]> {
    const rows = await this.dialect.db
      .selectFrom('operations')
      .selectAll()
      .where('server_uuid', '=', serverUuid)
      .where('state', 'in', ['pending', 'running'])
      .orderBy('id')
      .execute();
    return rows.map(toOp);
  }

  async countByState(): Promise<Record<string, number>> {
    const rows = await this.dialect.db
      .selectFrom('operations')
      .select(['state', (eb) => eb.fn.countAll().as('n')])
      .groupBy('state')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  /** Forget finished operations older than `ms`. */
  async prune(ms: number): Promise<void> {
    await this.dialect.db
      .deleteFrom('operations')
      .where('state', 'in', ['done', 'failed'])
      .where('updated_at', '<', new Date(Date.now() - ms).toISOString())
      .execute();
  }
}
