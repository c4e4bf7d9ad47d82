import { HOLDS_CAPACITY, TENDED } from '../domain/server-lifecycle.ts';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from './dialect/index.ts';
import type { Database, HostsTable } from './schema.ts';

export interface HostRow {
  name: string;
  driver: string;
  cpu: number;
  mem: number;
  public_host: string;
  agent: string;
  state: 'up' | 'down';
  heartbeat_at: string;
  /** An operator drained it: no new placements, the servers running there stay. */
  drained: boolean;
}

/** A host with what its servers hold, as `opensigma hosts list` and /metrics show it. */
export interface HostUse extends HostRow {
  used_cpu: number;
  used_mem: number;
  /** servers placed there: starting, running, stopping or unavailable */
  servers: number;
}

/** Server states that hold a host: a server in one of them may have a guest there. */
/** Statuses of a server placed on a host: the ones its agent tends (the lifecycle table's). */
export const PLACED = TENDED;

export class HostHeldError extends Error {
  constructor(
    readonly host: string,
    readonly agent: string,
  ) {
    super(`compute host ${host} is held by the live agent ${agent}; give this agent another OPENSIGMA_HOST_NAME`);
  }
}

// The column holds only what register and the sweeps write, 'up' or 'down'.
const toHost = (r: Selectable<HostsTable>): HostRow => ({
  ...r,
  state: r.state as HostRow['state'],
  cpu: Number(r.cpu),
  mem: Number(r.mem),
  drained: Boolean(Number(r.drained ?? 0)),
});

/** CPU and memory the servers on a host hold. */
export type Usage = { cpu: number; mem: number };

function usageQuery(trx: Kysely<Database>) {
  return trx
    .selectFrom('servers')
    .select(['host', sql<number>`sum(cpu)`.as('cpu'), sql<number>`sum(mem)`.as('mem')])
    .where('host', 'is not', null)
    .where('status', 'in', HOLDS_CAPACITY);
}

export class HostRepo {
  constructor(private readonly dialect: Dialect) {}

  // ---- what placement reads (compute/scheduler.ts decides) ----

  /** What the servers of `host` hold now (read again after its row is locked). */
  async usageOf(trx: Kysely<Database>, host: string): Promise<Map<string, Usage>> {
    const rows = await usageQuery(trx).where('host', '=', host).groupBy('host').execute();
    return new Map(rows.map((u) => [u.host!, { cpu: Number(u.cpu), mem: Number(u.mem) }]));
  }

  /** The hosts that take servers (up, not drained), each with what its servers hold, in one round trip. */
  async placeable(trx: Kysely<Database>): Promise<{ hosts: HostRow[]; usedBy: Map<string, Usage> }> {
    const rows = await trx
      .selectFrom('hosts')
      .leftJoin(usageQuery(trx).groupBy('host').as('u'), 'u.host', 'hosts.name')
      .selectAll('hosts')
      .select([sql<number>`coalesce(u.cpu, 0)`.as('used_cpu'), sql<number>`coalesce(u.mem, 0)`.as('used_mem')])
      .where('hosts.state', '=', 'up')
      .where('hosts.drained', '=', 0)
      .orderBy('hosts.name')
      .execute();
    const usedBy = new Map<string, Usage>();
    const hosts = rows.map(({ used_cpu, used_mem, ...r }) => {
      usedBy.set(r.name, { cpu: Number(used_cpu), mem: Number(used_mem) });
      return toHost(r);
    });
    return { hosts, usedBy };
  }

  /** The host each of `servers` holds room on (servers holding none are left out). */
  async hostsOf(trx: Kysely<Database>, servers: string[]): Promise<Array<{ uuid: string; host: string | null }>> {
    if (servers.length === 0) return [];
    return trx.selectFrom('servers').select(['uuid', 'host']).where('uuid', 'in', servers).where('status', 'in', HOLDS_CAPACITY).execute();
  }

  private placeableRows(trx: Kysely<Database>) {
    return trx.selectFrom('hosts').select('name').where('state', '=', 'up').where('drained', '=', 0);
  }

  /**
   * Locks the first of `names` (in their order) that no other transaction holds and that still takes servers;
   * undefined when every one is held or gone. Two API nodes placing at once never lock the same host.
   */
  async claimFirst(trx: Kysely<Database>, names: string[]): Promise<string | undefined> {
    if (names.length === 0) return undefined;
    const rank = sql`case ${sql.ref('name')} ${sql.join(
      names.map((n, i) => sql`when ${n} then ${sql.lit(i)}`),
      sql` `,
    )} end`;
    const q = this.placeableRows(trx).where('name', 'in', names).orderBy(rank).limit(1);
    return (await this.dialect.claimRows(q).executeTakeFirst())?.name;
  }

  /** Locks a host that still takes servers, waiting for a transaction that holds it; false when it no longer does. */
  async lockPlaceable(trx: Kysely<Database>, name: string): Promise<boolean> {
    return !!(await this.dialect.lockRows(this.placeableRows(trx).where('name', '=', name)).executeTakeFirst());
  }

  /**
   * Binds a host to `agent`. A host belongs to one agent at a time: taking it over is allowed only once its
   * previous agent stopped heartbeating for `timeoutMs` (or was marked down), so two agents never run one host.
   */
  async register(h: Omit<HostRow, 'heartbeat_at' | 'state' | 'drained'>, timeoutMs: number): Promise<void> {
    const db = this.dialect.db;
    const t = new Date().toISOString();
    const cutoff = new Date(Date.now() - timeoutMs).toISOString();
    const res = await db
      .insertInto('hosts')
      .values({ ...h, state: 'up', heartbeat_at: t })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ ...h, state: 'up', heartbeat_at: t })
          .where((eb) => eb.or([eb('hosts.agent', '=', h.agent), eb('hosts.state', '=', 'down'), eb('hosts.heartbeat_at', '<', cutoff)])),
      )
      .executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0) === 0) {
      const holder = await this.get(h.name);
      throw new HostHeldError(h.name, holder?.agent ?? '?');
    }
  }

  /**
   * Renews the hosts among `names` that `agent` holds; returns the names it still holds (a host taken over by another
   * agent is lost). Only the hosts the agent serves now: a host it served under an earlier configuration stays down.
   */
  async heartbeat(agent: string, names: string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const rows = await this.dialect.db
      .updateTable('hosts')
      .set({ heartbeat_at: new Date().toISOString(), state: 'up' })
      .where('agent', '=', agent)
      .where('name', 'in', names)
      .returning('name')
      .execute();
    return rows.map((r) => r.name);
  }

  /**
   * Hosts that an earlier configuration of this data dir served (same agent identity, whatever the host name then)
   * and the current one does not: marked down. Returns their names.
   */
  async retire(identity: string, keep: string[], trx: Kysely<Database> = this.dialect.db): Promise<string[]> {
    let q = trx.updateTable('hosts').set({ state: 'down' }).where('agent', 'like', `%@${identity}`);
    if (keep.length) q = q.where('name', 'not in', keep);
    const rows = await q.returning('name').execute();
    return rows.map((r) => r.name);
  }

  /** The names of the hosts that are down. */
  async downNames(trx: Kysely<Database> = this.dialect.db): Promise<string[]> {
    return (await trx.selectFrom('hosts').select('name').where('state', '=', 'down').execute()).map((r) => r.name);
  }

  /** A host's state (up or down), if there is such a host. */
  async stateOf(name: string, trx: Kysely<Database> = this.dialect.db): Promise<string | undefined> {
    return (await trx.selectFrom('hosts').select('state').where('name', '=', name).executeTakeFirst())?.state;
  }

  /** Deletes a host's row, whatever is placed there (the caller settled its servers). */
  async forget(name: string, trx: Kysely<Database> = this.dialect.db): Promise<void> {
    await trx.deleteFrom('hosts').where('name', '=', name).execute();
  }

  /** Drains a host (no new servers) or lets it take servers again; false if there is no such host. */
  async setDrained(name: string, drained: boolean): Promise<boolean> {
    const res = await this.dialect.db
      .updateTable('hosts')
      .set({ drained: drained ? 1 : 0 })
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Forgets a host. Refused (answers the servers placed there) while any server may run on it, and while its agent
   * is alive (stop the agent first); an agent that serves it again registers it again when it starts.
   */
  async remove(name: string): Promise<{ removed: boolean; servers: string[]; up: boolean }> {
    return this.dialect.db.transaction().execute(async (trx) => {
      const placed = await trx.selectFrom('servers').select('uuid').where('host', '=', name).where('status', 'in', PLACED).execute();
      const servers = placed.map((r) => r.uuid);
      if (servers.length) return { removed: false, servers, up: false };
      // A live agent would find its host gone at its next heartbeat and stop, as if another agent had taken it.
      const row = await trx.selectFrom('hosts').select('state').where('name', '=', name).executeTakeFirst();
      if (row?.state === 'up') return { removed: false, servers, up: true };
      const res = await trx.deleteFrom('hosts').where('name', '=', name).executeTakeFirst();
      return { removed: Number(res.numDeletedRows) === 1, servers, up: false };
    });
  }

  /** Every host with the CPU and memory its servers hold and how many servers are placed there. */
  async listWithUse(trx: Kysely<Database> = this.dialect.db): Promise<HostUse[]> {
    const use = trx
      .selectFrom('servers')
      .select(['host', sql<number>`sum(cpu)`.as('used_cpu'), sql<number>`sum(mem)`.as('used_mem'), sql<number>`count(*)`.as('servers')])
      .where('host', 'is not', null)
      .where('status', 'in', PLACED)
      .groupBy('host');
    const rows = await trx
      .selectFrom('hosts')
      .leftJoin(use.as('u'), 'u.host', 'hosts.name')
      .selectAll('hosts')
      .select([
        sql<number>`coalesce(u.used_cpu, 0)`.as('used_cpu'),
        sql<number>`coalesce(u.used_mem, 0)`.as('used_mem'),
        sql<number>`coalesce(u.servers, 0)`.as('servers'),
      ])
      .orderBy('hosts.name')
      .execute();
    return rows.map((r) => ({ ...toHost(r), used_cpu: Number(r.used_cpu), used_mem: Number(r.used_mem), servers: Number(r.servers) }));
  }

  /** How many hosts are in each state. */
  async countByState(trx: Kysely<Database> = this.dialect.db): Promise<Array<{ state: string; n: number }>> {
    const rows = await trx
      .selectFrom('hosts')
      .select(['state', (eb) => eb.fn.countAll().as('n')])
      .groupBy('state')
      .execute();
    return rows.map((r) => ({ state: r.state, n: Number(r.n) }));
  }

  async list(trx: Kysely<Database> = this.dialect.db): Promise<HostRow[]> {
    const rows = await trx.selectFrom('hosts').selectAll().orderBy('name').execute();
    return rows.map(toHost);
  }

  async get(name: string): Promise<HostRow | undefined> {
    const r = await this.dialect.db.selectFrom('hosts').selectAll().where('name', '=', name).executeTakeFirst();
    return r ? toHost(r) : undefined;
  }

  /**
   * Hosts whose agent stopped heartbeating for `ms` are marked down, in one statement so that of several nodes
   * sweeping at once exactly one acts on each host. Returns the names this call marked down.
   */
  async markStale(ms: number, trx: Kysely<Database> = this.dialect.db): Promise<string[]> {
    const cutoff = new Date(Date.now() - ms).toISOString();
    const rows = await trx.updateTable('hosts').set({ state: 'down' }).where('state', '=', 'up').where('heartbeat_at', '<', cutoff).returning('name').execute();
    return rows.map((s) => s.name);
  }

  /** Lets the hosts of an agent that stops cleanly go at once, rather than after the heartbeat timeout. */
  async release(agent: string): Promise<void> {
    await this.dialect.db.updateTable('hosts').set({ state: 'down' }).where('agent', '=', agent).execute();
  }
}
