import { errors } from '../errors.ts';
import type { IpConf, ServerDef } from './server-definition.ts';

/** Static addresses a definition's NICs use, with the field that names them. */
export function staticIps(def: Pick<ServerDef, 'nics'> | null): Array<{ ip: string; point: string }> {
  const out: Array<{ ip: string; point: string }> = [];
  for (const n of def?.nics ?? [])
    for (const [key, conf] of [
      ['ip_v4_conf', n.ip_v4_conf],
      ['ip_v6_conf', n.ip_v6_conf],
    ] as Array<[string, IpConf | null]>)
      if (conf?.conf === 'static' && conf.ip) out.push({ ip: conf.ip, point: `nics.${key}.ip` });
  return out;
}

/** A reference of a definition's NICs that the store must confirm: a static address or a VLAN new to it. */
export type NicReference = { kind: 'ip'; ip: string; point: string } | { kind: 'vlan'; vlan: string };

/**
 * The references of a definition to check against what the account holds, in the order they are checked. Only
 * references new to this definition are listed, so an edit never fails over what the server already had; one
 * address given to two NICs is refused here, where it stands among the others.
 */
export function* newNicReferences(def: ServerDef, previous: ServerDef | null): Generator<NicReference> {
  const had = new Set(staticIps(previous).map((s) => s.ip));
  const seen = new Set<string>();
  for (const { ip, point } of staticIps(def)) {
    if (seen.has(ip)) throw errors.invalid(point, `IP address ${ip} is given to two NICs of this server`);
    seen.add(ip);
    if (!had.has(ip)) yield { kind: 'ip', ip, point };
  }
  const hadVlans = new Set(previous?.nics.map((n) => n.vlan) ?? []);
  for (const n of def.nics) if (n.vlan && !hadVlans.has(n.vlan)) yield { kind: 'vlan', vlan: n.vlan };
}
