import { allocateAddress, parsePool } from '../domain/cidr.ts';
import type { Store } from '../store/index.ts';

/** The usable addresses of a CIDR pool: not the network, the gateway (.1) or the broadcast address. */
export const poolRange = (cidr: string) => parsePool(cidr, 'OPENSIGMA_DHCP_POOL');

/** Leases the lowest free address to a NIC (the one allocator public IPs use too); a NIC keeps the address it holds. */
export async function leaseAddress(store: Store, cidr: string, serverUuid: string, mac: string): Promise<string> {
  const existing = await store.leases.of(serverUuid, mac);
  if (existing) return existing;
  const ip = await allocateAddress(poolRange(cidr), await store.leases.addresses(), (ip) => store.leases.claim(ip, serverUuid, mac));
  if (ip === null) throw new Error(`DHCP pool ${cidr} is exhausted`);
  return ip;
}
