import type { Kysely } from 'kysely';
import { ON_HOST } from '../domain/server-lifecycle.ts';
import type { Dialect } from './dialect/index.ts';
import type { Database } from './schema.ts';

/** A DHCP address a server on a host holds, with the server's owner. */
export interface Lease {
  ip: string;
  server_uuid: string;
  owner: string;
}

/** DHCP leases: which address each NIC of a server on a host was given. The address is the primary key. */
export class LeaseRepo {
  constructor(private readonly dialect: Dialect) {}

  private get db(): Kysely<Database> {
    return this.dialect.db;
  }

  /** The address a NIC already holds, if any. */
  async of(serverUuid: string, mac: string, trx: Kysely<Database> = this.db): Promise<string | undefined> {
    return (await trx.selectFrom('dhcp_leases').select('ip').where('server_uuid', '=', serverUuid).where('mac', '=', mac).executeTakeFirst())?.ip;
  }

  /** Every leased address, of every server. */
  async addresses(trx: Kysely<Database> = this.db): Promise<string[]> {
    return (await trx.selectFrom('dhcp_leases').select('ip').execute()).map((r) => r.ip);
  }

  /** Leases `ip` to a NIC unless another NIC holds it; says whether it did. Never aborts the transaction. */
  async claim(ip: string, serverUuid: string, mac: string, trx: Kysely<Database> = this.db): Promise<boolean> {
    const res = await trx
      .insertInto('dhcp_leases')
      .values({ ip, server_uuid: serverUuid, mac, created_at: new Date().toISOString() })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Gives back every address of a server (it left its host). */
  async release(serverUuid: string, trx: Kysely<Database> = this.db): Promise<void> {
    await trx.deleteFrom('dhcp_leases').where('server_uuid', '=', serverUuid).execute();
  }

  /** The addresses of one server, by NIC. */
  async ofServer(serverUuid: string, trx: Kysely<Database> = this.db): Promise<Array<{ ip: string; mac: string }>> {
    return trx.selectFrom('dhcp_leases').select(['ip', 'mac']).where('server_uuid', '=', serverUuid).execute();
  }

  /** The leases of servers on a host (of one owner, or of one address), oldest first. */
  async active(where: { owner?: string; ip?: string }, trx: Kysely<Database> = this.db): Promise<Lease[]> {
    let q = trx
      .selectFrom('dhcp_leases')
      .innerJoin('servers', 'servers.uuid', 'dhcp_leases.server_uuid')
      .select(['dhcp_leases.ip as ip', 'dhcp_leases.server_uuid as server_uuid', 'servers.owner as owner'])
      .where('servers.status', 'in', ON_HOST);
    if (where.owner) q = q.where('servers.owner', '=', where.owner);
    if (where.ip) q = q.where('dhcp_leases.ip', '=', where.ip);
    return (await q.orderBy('dhcp_leases.created_at').execute()).map((r) => ({ ...r, owner: r.owner ?? '' }));
  }
}
