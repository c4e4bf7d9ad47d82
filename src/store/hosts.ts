import type { Kysely } from 'kysely';
import type { Dialect } from './dialect/index.ts';

export interface HostRow {
  name: string;
  driver: string;
  cpu: number;
  mem: number;
  public_host: string;
  agent: string;
  state: 'up' | 'down';
  heartbeat_at: string;
}

export class HostHeldError extends Error {
  constructor(
    readonly host: string,
    readonly agent: string,
  ) {
    super(`compute host ${host} is held by the live agent ${agent}; give this agent another OPENSIGMA_HOST_NAME`);
  }
}

const toHost = (r: any): HostRow => ({ ...r, cpu: Number(r.cpu), mem: Number(r.mem) });

export class HostRepo {
  constructor(private readonly dialect: Dialect) {}

  /**
   * Binds a host to `agent`. A host belongs to one agent at a time: taking it over is allowed only once its
   * previous agent stopped heartbeating for `timeoutMs` (or was marked down), so two agents never run one host.
   */
  async register(h: Omit<HostRow, 'heartbeat_at' | 'state'>, timeoutMs: number): Promise<void> {
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

  /** Renews the hosts `agent` holds; returns the names it still holds (a host taken over by another agent is lost). */
  async heartbeat(agent: string): Promise<string[]> {
    const rows = await this.dialect.db
      .updateTable('hosts')
      .set({ heartbeat_at: new Date().toISOString(), state: 'up' })
      .where('agent', '=', agent)
      .returning('name')
      .execute();
    return rows.map((r: any) => r.name);
  }

  async list(trx: Kysely<any> = this.dialect.db): Promise<HostRow[]> {
    const rows = await trx.selectFrom('hosts').selectAll().orderBy('name').execute();
    return rows.map(toHost);
  }

  async get(name: string): Promise<HostRow | undefined> {
    const r: any = await this.dialect.db.selectFrom('hosts').selectAll().where('name', '=', name).executeTakeFirst();
    return r ? toHost(r) : undefined;
  }

  /**
   * Hosts whose agent stopped heartbeating for `ms` are marked down, in one statement so that of several nodes
   * sweeping at once exactly one acts on each host. Returns the names this call marked down.
   */
  async markStale(ms: number, trx: Kysely<any> = this.dialect.db): Promise<string[]> {
    const cutoff = new Date(Date.now() - ms).toISOString();
    const rows = await trx
      .updateTable('hosts')
      .set({ state: 'down' })
      .where('state', '=', 'up')
      .where('heartbeat_at', '<', cutoff)
      .returning('name')
      .execute();
    return rows.map((s: any) => s.name);
  }

  /** Lets the hosts of an agent that stops cleanly go at once, rather than after the heartbeat timeout. */
  async release(agent: string): Promise<void> {
    await this.dialect.db.updateTable('hosts').set({ state: 'down' }).where('agent', '=', agent).execute();
  }
}
