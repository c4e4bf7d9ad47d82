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

export class HostRepo {
  constructor(private readonly dialect: Dialect) {}

  async upsert(h: Omit<HostRow, 'heartbeat_at' | 'state'>): Promise<void> {
    const db = this.dialect.db;
    const t = new Date().toISOString();
    await db
      .insertInto('hosts')
      .values({ ...h, state: 'up', heartbeat_at: t })
      .onConflict((oc) => oc.column('name').doUpdateSet({ ...h, state: 'up', heartbeat_at: t }))
      .execute();
  }

  async heartbeat(agent: string): Promise<void> {
    await this.dialect.db.updateTable('hosts').set({ heartbeat_at: new Date().toISOString(), state: 'up' }).where('agent', '=', agent).execute();
  }

  async list(trx: Kysely<any> = this.dialect.db): Promise<HostRow[]> {
    const rows = await trx.selectFrom('hosts').selectAll().orderBy('name').execute();
    return rows.map((r: any) => ({ ...r, cpu: Number(r.cpu), mem: Number(r.mem) }));
  }

  async get(name: string): Promise<HostRow | undefined> {
    const r: any = await this.dialect.db.selectFrom('hosts').selectAll().where('name', '=', name).executeTakeFirst();
    return r ? { ...r, cpu: Number(r.cpu), mem: Number(r.mem) } : undefined;
  }

  /** Hosts whose agent stopped heartbeating for `ms` are marked down; returns their names. */
  async markStale(ms: number): Promise<string[]> {
    const cutoff = new Date(Date.now() - ms).toISOString();
    const stale = await this.dialect.db.selectFrom('hosts').select('name').where('state', '=', 'up').where('heartbeat_at', '<', cutoff).execute();
    if (stale.length)
      await this.dialect.db
        .updateTable('hosts')
        .set({ state: 'down' })
        .where('name', 'in', stale.map((s: any) => s.name))
        .execute();
    return stale.map((s: any) => s.name);
  }
}
