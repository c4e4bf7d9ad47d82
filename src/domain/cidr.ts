/** IPv4 address arithmetic for the address pools an operator configures. */

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

export const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
export const isIpv4 = (s: string): boolean => IPV4.test(s);

export interface Pool {
  cidr: string;
  /** first and last addresses handed out: not the network, the gateway (.1) or the broadcast address */
  first: number;
  last: number;
  gateway: string;
  prefix: number;
}

/** Parses a CIDR pool such as 198.51.100.0/24; throws with the setting's name on nonsense. */
export function parsePool(cidr: string, setting = 'pool'): Pool {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr.trim());
  if (!m || !isIpv4(m[1]!) || Number(m[2]) > 30 || Number(m[2]) < 8) throw new Error(`${setting} must be an IPv4 CIDR between /8 and /30, not ${cidr}`);
  const prefix = Number(m[2]);
  const size = 2 ** (32 - prefix);
  const network = ipToInt(m[1]!) - (ipToInt(m[1]!) % size);
  return { cidr: `${intToIp(network)}/${prefix}`, first: network + 2, last: network + size - 2, gateway: intToIp(network + 1), prefix };
}

export function poolsOverlap(a: Pool, b: Pool): boolean {
  return a.first - 2 <= b.last + 1 && b.first - 2 <= a.last + 1;
}

export function inPool(pool: Pool, ip: string): boolean {
  if (!isIpv4(ip)) return false;
  const n = ipToInt(ip);
  return n >= pool.first && n <= pool.last;
}

/**
 * The one address allocator, for public IPs and DHCP leases alike: the lowest address of `pool` that is not `taken`
 * and that `claim` gets (its write, under a unique key, loses cleanly to a concurrent taker: the next one is tried).
 * Null when the pool has none left.
 */
export async function allocateAddress(pool: Pool, taken: Iterable<string>, claim: (ip: string) => Promise<boolean>): Promise<string | null> {
  const used = new Set([...taken].map(ipToInt));
  for (let n = pool.first; n <= pool.last; n++) if (!used.has(n) && (await claim(intToIp(n)))) return intToIp(n);
  return null;
}
