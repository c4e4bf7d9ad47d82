import { forwardedPorts } from '../domain/firewall.ts';
import type { ServerRuntime } from '../domain/server-runtime.ts';
import { DEFAULT_FORWARDED_PORTS } from '../hypervisor/driver.ts';
import type { NodeContext } from './node-context.ts';

/**
 * A policy edited or attached takes effect on running guests at once, on whichever node edited it: the forwarded
 * ports and outbound rules of running guests follow their NICs' policies.
 */
export class PortForwards {
  private readonly forwarding = new Map<string, Promise<void>>();

  constructor(private readonly ctx: NodeContext) {}

  /** Follows the bus until the returned function is called. */
  watch(): () => void {
    return this.ctx.bus.subscribe((e) => {
      if (e.resource_type === 'fwpolicies' || (e.resource_type === 'servers' && e.action === 'updated'))
        void this.refresh(e.resource_type, e.uuid).catch((err) =>
          this.ctx.log.warn({ err: (err as Error).message, uuid: e.uuid }, 'applying a firewall policy'),
        );
    });
  }

  /** A policy, or one server, changed. */
  private async refresh(kind: string, uuid: string): Promise<void> {
    const servers = kind === 'servers' ? [uuid] : await this.ctx.store.serversUsingPolicy(uuid);
    for (const server of servers) {
      // One refresh at a time per server, in the order the changes came.
      const next = (this.forwarding.get(server) ?? Promise.resolve()).then(() => this.apply(server));
      this.forwarding.set(
        server,
        next.catch(() => {}),
      );
      await next;
    }
  }

  private async apply(uuid: string): Promise<void> {
    const s = await this.ctx.store.servers.get(uuid);
    if (!s || s.status !== 'running' || !s.row.host || !s.row.runtime) return;
    const driver = this.ctx.hosts.get(String(s.row.host));
    if (!driver?.setPortForwards) return;
    const rt = JSON.parse(String(s.row.runtime)) as ServerRuntime;
    const policies = await this.ctx.store.nicPolicies(uuid);
    for (const n of rt.nics) {
      if (n.interface_type !== 'public' || !n.ip_v4) continue;
      const ports = forwardedPorts(policies.get(n.mac), DEFAULT_FORWARDED_PORTS, { hostIp: this.ctx.bindHost(), guestIp: n.ip_v4 });
      await driver.setPortForwards(uuid, n.mac, ports);
      await driver.setOutboundRules?.(uuid, n.mac, policies.get(n.mac)?.rules);
    }
  }
}
