import type { ReferenceCheck, Services } from '../services.ts';
import { errors } from '../errors.ts';
import { isIpv4 } from '../domain/cidr.ts';
import { newNicReferences } from '../domain/nic-rules.ts';
import { ENDED } from '../domain/subscription-terms.ts';
import { chainsRunning } from './network-objects.ts';

/**
 * The networking rules of a server definition: a static address must be the actor's and on no other server; a VLAN
 * must be the actor's. An IP or VLAN whose subscription ended is kept only for the server still using it, whether
 * or not the background sweep has marked it yet. The composition root registers it for every process.
 */
export function nicRules(svc: Services): ReferenceCheck {
  const store = svc.store;
  return async (actor, def, previous, trx) => {
    for (const r of newNicReferences(def, previous)) {
      if (r.kind === 'ip') {
        // The row is locked before it is read: two requests attaching one address take turns (the second sees the
        // first), and a sweep freeing it either went first (the row is gone) or waits and then sees this server.
        const owned = isIpv4(r.ip) && (await store.ips.lock([r.ip], trx)).length ? await store.ips.get(r.ip, trx) : undefined;
        if (
          !owned ||
          owned.status === ENDED ||
          !(await svc.access.canUse(actor, 'ips', owned, trx)) ||
          !(await chainsRunning(store, [owned], new Date(), trx)).has(r.ip)
        )
          throw errors.ipNotYours(r.ip, r.point);
        const users = (await store.servers.referencing('ip', r.ip, ['static'], trx)).filter((s) => s !== def.uuid);
        if (users.length) throw errors.ipInUse(r.ip, users[0]!, r.point);
      } else {
        const v = (await store.vlans.lock([r.vlan], trx)).length ? await store.vlans.get(r.vlan, trx) : undefined;
        if (!v || v.status === ENDED || !(await svc.access.canUse(actor, 'vlans', v, trx)) || !(await chainsRunning(store, [v], new Date(), trx)).has(r.vlan))
          throw errors.vlanNotYours(r.vlan);
      }
    }
  };
}
