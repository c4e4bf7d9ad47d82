import type { Kysely } from 'kysely';
import { intToIp, ipToInt, parsePool } from '../domain/cidr.ts';
import type { Database } from '../store/schema.ts';

/** The usable addresses of a CIDR pool: not the network, the gateway (.1) or the broadcast address. */
export const poolRange = (cidr: string) => parsePool(cidr, 'OPENSIGMA_DHCP_POOL');

/** Leases the lowest free address to a NIC; the primary key keeps two leases of one address impossible. */
export async function leaseAddress(db: Kysely<Database>, cidr: string, serverUuid: string, mac: string): Promise<string> {
  const existing = await db.selectFrom('dhcp_leases').select('ip').where('server_uuid', '=', serverUuid).where('mac', '=', mac).executeTakeFirst();
  if (existing) return existing.ip;
  const { first, last } = poolRange(cidr);
  for (let attempt = 0; attempt < 20; attempt++) {
    const taken = new Set((await db.selectFrom('dhcp_leases').select('ip').execute()).map((r: any) => ipToInt(r.ip)));
    let n = first;
    while (n <= last && taken.has(n)) n++;
    if (n > last) throw new Error(`DHCP pool ${cidr} is exhausted`);
    try {
      await db
        .insertInto('dhcp_leases')
        .values({ ip: intToIp(n), server_uuid: serverUuid, mac, created_at: new Date().toISOString() })
        .execute();
      return intToIp(n);
    } catch {
      // another node took it first; look again
    }
  }
  throw new Error('could not lease an address');
}

export async function releaseAddresses(db: Kysely<Database>, serverUuid: string): Promise<void> {
  await db.deleteFrom('dhcp_leases').where('server_uuid', '=', serverUuid).execute();
}
