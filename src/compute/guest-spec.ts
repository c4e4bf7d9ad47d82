import type { Config } from '../config.ts';
import { forwardedPorts } from '../domain/firewall.ts';
import type { ServerDef } from '../domain/server-definition.ts';
import { DEFAULT_FORWARDED_PORTS, type GuestSpec } from '../hypervisor/driver.ts';
import type { Store } from '../store/index.ts';
import { findImage } from '../storage/images.ts';
import { leaseAddress } from './dhcp.ts';

/** Resolves drives to image files and NICs to addresses. */
export async function guestSpec(store: Store, config: Pick<Config, 'storageDir' | 'dhcpPool' | 'listenHost'>, def: ServerDef): Promise<GuestSpec> {
  const drives = await store.drives.getMany(def.drives.map((d) => d.drive));
  const policies = await store.nicPolicies(def.uuid);
  const byId = new Map(drives.map((d) => [d.uuid, d]));
  const nics: GuestSpec['nics'] = [];
  for (const n of def.nics) {
    if (n.vlan) nics.push({ mac: n.mac, model: n.model, boot_order: n.boot_order, kind: 'private', ip: null, vlan: n.vlan });
    else if (n.ip_v4_conf?.conf === 'static')
      nics.push({ mac: n.mac, model: n.model, boot_order: n.boot_order, kind: 'public', ip: n.ip_v4_conf.ip, vlan: null });
    else if (n.ip_v4_conf?.conf === 'dhcp' || n.ip_v6_conf?.conf === 'dhcp') {
      const ip = n.ip_v4_conf?.conf === 'dhcp' ? await leaseAddress(store, config.dhcpPool, def.uuid, n.mac) : null;
      nics.push({ mac: n.mac, model: n.model, boot_order: n.boot_order, kind: 'public', ip, vlan: null });
    } else if (n.ip_v4_conf || n.ip_v6_conf) nics.push({ mac: n.mac, model: n.model, boot_order: n.boot_order, kind: 'public', ip: null, vlan: null });
    else nics.push({ mac: n.mac, model: n.model, boot_order: n.boot_order, kind: 'none', ip: null, vlan: null });
  }
  // A public NIC under a firewall policy forwards the ports the policy lets in from the host; the host side binds
  // where the API listens, so the address a client already uses reaches them.
  for (const n of nics) {
    const policy = policies.get(n.mac);
    if (policy && n.kind === 'public' && n.ip) {
      n.ports = forwardedPorts(policy, DEFAULT_FORWARDED_PORTS, { hostIp: config.listenHost, guestIp: n.ip });
      n.outbound = policy.rules;
    }
  }
  return {
    uuid: def.uuid,
    name: def.name,
    cpu: def.cpu,
    mem: def.mem,
    smp: def.smp,
    cpu_type: def.cpu_type,
    cpu_model: def.cpu_model,
    cpus_instead_of_cores: def.cpus_instead_of_cores,
    enable_numa: def.enable_numa,
    hv_relaxed: def.hv_relaxed,
    hv_tsc: def.hv_tsc,
    vnc_password: def.vnc_password,
    context: def.context,
    meta: def.meta,
    drives: def.drives.map((a) => {
      const d = byId.get(a.drive);
      const img = findImage(config.storageDir, a.drive);
      return {
        uuid: a.drive,
        device: a.device,
        dev_channel: a.dev_channel,
        boot_order: a.boot_order,
        media: (d?.doc.media ?? 'disk') as 'disk' | 'cdrom',
        path: img?.path ?? null,
        format: img?.format ?? 'raw',
      };
    }),
    nics,
  };
}
