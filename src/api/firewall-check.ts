import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { decide, firstMatch, type Packet } from '../domain/firewall.ts';
import { ServerCommands } from '../commands/servers.ts';
import type { Query, Routes } from './http.ts';
import { UuidParams } from './schemas.ts';

/** What the check reads of a NIC as the server's render shows it. */
type ShownNic = {
  mac: string;
  vlan?: unknown;
  firewall_policy?: unknown;
  ip_v4_conf?: { ip?: { uuid?: string } | null } | null;
  runtime?: { ip_v4?: { uuid?: string } | null } | null;
};

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function ipParam(query: Query, key: string): string | null {
  const v = query[key];
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string' || !IPV4.test(v)) throw errors.invalid(key, `${key} must be an IPv4 address, not ${JSON.stringify(v)}`);
  return v;
}

function portParam(query: Query, key: string): number | null {
  const v = query[key];
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string' || !/^\d{1,5}$/.test(v) || Number(v) > 65535)
    throw errors.invalid(key, `${key} must be a port from 0 to 65535, not ${JSON.stringify(v)}`);
  return Number(v);
}

/**
 * "Would this packet get through?" for each public NIC of a server, decided by its firewall policy exactly as the
 * QEMU driver enforces it (`decide` of domain/firewall.ts: first match, unmatched accepted). It reads the server's
 * definition and policies only, so it answers the same with every driver: clients test their policies on the sim.
 */
export function firewallCheckRoutes(r: Routes, svc: Services): void {
  const servers = new ServerCommands(svc);
  r.get(
    '/opensigma/servers/:uuid/firewall/',
    {
      auth: 'user',
      tags: ['opensigma'],
      summary: 'Which public NICs of a server would let a packet through (direction, ip_proto, src_ip, src_port, dst_ip, dst_port, mac)',
      schema: { params: UuidParams },
    },
    async ({ actor, params, query }) => {
      const direction = query.direction ?? 'in';
      if (direction !== 'in' && direction !== 'out') throw errors.invalid('direction', 'direction must be in or out');
      const proto = String(query.ip_proto ?? 'tcp').toLowerCase();
      if (!/^[a-z0-9]{1,16}$/.test(proto)) throw errors.invalid('ip_proto', 'ip_proto must be a protocol name such as tcp, udp or icmp');
      const src = ipParam(query, 'src_ip');
      const dst = ipParam(query, 'dst_ip');
      const srcPort = portParam(query, 'src_port');
      const dstPort = portParam(query, 'dst_port');
      const remote = direction === 'in' ? 'src_ip' : 'dst_ip';
      if ((direction === 'in' ? src : dst) === null) throw errors.invalid(remote, `Give ${remote}: the other end of the connection`);
      if ((proto === 'tcp' || proto === 'udp') && dstPort === null) throw errors.invalid('dst_port', `A ${proto} packet has a destination port: give dst_port`);
      const mac = query.mac === undefined ? null : String(query.mac).toLowerCase();

      const s = await servers.load(actor, params.uuid!);
      const shown = await servers.render(actor, s);
      const policies = await svc.store.nicPolicies(s.uuid);
      const nics = (shown.nics as ShownNic[]).filter((n) => !n.vlan && (mac === null || n.mac === mac));
      if (mac !== null && !nics.length) throw errors.invalid('mac', `The server has no public NIC with MAC ${mac}`);
      const objects = nics.map((n) => {
        // The NIC's own address: its static IP, else its lease while the server runs; none otherwise.
        const address: string | null = n.ip_v4_conf?.ip?.uuid ?? n.runtime?.ip_v4?.uuid ?? null;
        const packet: Packet = {
          direction,
          proto,
          srcIp: (direction === 'in' ? src : (src ?? address)) ?? '',
          srcPort,
          dstIp: (direction === 'in' ? (dst ?? address) : dst) ?? '',
          dstPort,
        };
        const policy = policies.get(n.mac);
        // Which rule decided is the policy's business: shown only to whom the NIC shows the policy.
        const visible = policy && n.firewall_policy ? firstMatch(policy.rules, packet) : -1;
        return {
          mac: n.mac,
          ip_v4: address,
          firewall_policy: n.firewall_policy ?? null,
          action: decide(policy, packet),
          rule: visible >= 0 ? visible : null,
          packet: {
            direction,
            ip_proto: proto,
            src_ip: packet.srcIp || null,
            src_port: srcPort,
            dst_ip: packet.dstIp || null,
            dst_port: dstPort,
          },
        };
      });
      return { meta: { limit: 0, offset: 0, total_count: objects.length }, objects };
    },
  );
}
