import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { allows, type ServerEvent } from '../domain/server-lifecycle.ts';
import { ref } from '../domain/refs.ts';
import { GuessThrottle } from '../domain/guess-throttle.ts';
import type { EventBus } from '../events.ts';
import type { HypervisorDriver } from '../hypervisor/driver.ts';
import type { Store } from '../store/index.ts';
import type { ConsoleGateway } from './console.ts';
import type { VncGateway } from './vnc-gateway.ts';

/**
 * What the parts of one compute node share: its hosts, the gateways open to its guests, and the few ways a guest's
 * fate is written back. The worker's handlers, reconciliation and the exit path all record a stopped guest, and must
 * do it alike (gateways closed, lease released, one event).
 */
export class NodeContext {
  readonly consoles = new Map<string, ConsoleGateway>();
  readonly vncs = new Map<string, VncGateway>();
  /** Wrong console and VNC passwords, per source, across every server of this node. */
  readonly guesses = new GuessThrottle();

  constructor(
    readonly config: Config,
    readonly store: Store,
    readonly bus: EventBus,
    readonly hosts: Map<string, HypervisorDriver>,
    readonly log: Logger,
  ) {}

  get hostNames(): string[] {
    return [...this.hosts.keys()];
  }

  /** Consoles listen where the API does, so the URL's host reaches them. */
  bindHost(): string {
    return this.config.listenHost;
  }

  driverFor(host: string): HypervisorDriver {
    const d = this.hosts.get(host);
    if (!d) throw new Error(`host ${host} is not run by this agent`);
    return d;
  }

  publish(uuid: string, owner: string | null, action: string, error?: string): void {
    this.bus.publish({ resource_type: 'servers', resource_uri: ref('servers', uuid).resource_uri, uuid, owner, action, ...(error ? { error } : {}) });
  }

  async isUp(driver: HypervisorDriver, uuid: string): Promise<boolean> {
    return (await driver.guests()).some((g) => g.uuid === uuid && g.state === 'running');
  }

  /** The guest is off: the server is stopped by `event`, if it still is in `seen` (what the caller saw) when given. */
  async markStopped(
    uuid: string,
    owner: string | null,
    event: ServerEvent = 'powered_off',
    seen?: string,
    usedUp: string[] = [],
    why: { action: string; error?: string } = { action: 'stopped' },
  ): Promise<void> {
    if (!(await this.transitionUsingUp(uuid, usedUp, { event, seen }))) return;
    await this.consoles.get(uuid)?.close();
    this.consoles.delete(uuid);
    await this.vncs.get(uuid)?.close();
    this.vncs.delete(uuid);
    await this.store.leases.release(uuid);
    this.publish(uuid, owner, why.action, why.error);
  }

  /**
   * transition() that also removes from the server's meta the one-shot keys a driver used up (sim_fail_next, ...), in
   * the same write: the instruction is spent exactly when its effect is recorded. Without `change`, only removes them.
   */
  async transitionUsingUp(uuid: string, keys: string[], change?: { event: ServerEvent; seen?: string; whileOperation?: number }): Promise<boolean> {
    if (keys.length === 0)
      return change ? (await this.store.servers.applyEvent(uuid, change.event, { seen: change.seen, whileOperation: change.whileOperation })) !== null : true;
    for (;;) {
      const s = await this.store.servers.get(uuid);
      if (!s || (change && (!allows(change.event, s.status) || (change.seen !== undefined && s.status !== change.seen)))) return false;
      if (!change && !keys.some((k) => k in s.doc.meta)) return true;
      const doc = { ...s.doc, meta: Object.fromEntries(Object.entries(s.doc.meta).filter(([k]) => !keys.includes(k))) };
      // A concurrent edit of the server moved its version: read it again rather than write over it.
      if (change) {
        const applied = await this.store.servers.applyEvent(uuid, change.event, {
          seen: s.status,
          version: s.version,
          doc,
          whileOperation: change.whileOperation,
        });
        if (applied !== null) return true;
        // Not a version race but a superseded operation: its outcome no longer applies.
        if (change.whileOperation !== undefined && (await this.store.operations.get(change.whileOperation))?.state !== 'running') return false;
      } else if (await this.store.servers.update(doc, { expectedVersion: s.version })) return true;
    }
  }
}
