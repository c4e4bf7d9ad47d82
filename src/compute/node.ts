import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ServerDef } from '../domain/server-definition.ts';
import type { EventBus } from '../events.ts';
import type { GuestSpec, HypervisorDriver } from '../hypervisor/driver.ts';
import type { Store } from '../store/index.ts';
import { handleGuestsAtExit } from './exit.ts';
import { guestSpec } from './guest-spec.ts';
import { perform } from './handlers/index.ts';
import { retireHosts } from './host-loss.ts';
import { agentIdentity } from './identity.ts';
import { NodeContext } from './node-context.ts';
import { PortForwards } from './port-forwards.ts';
import { Reconciler } from './reconcile.ts';
import { refreshStats } from './stats.ts';
import { OperationWorker } from './worker.ts';

/**
 * The compute side of opensigma: runs the hosts of one process (an agent, or the single `serve` process), claims
 * their operations, drives the hypervisor, and writes back what really happened. The only writer of runtime state.
 * Its parts each keep one concern (the worker, the handlers, reconciliation, stats, port forwards); this class owns
 * their order of start and stop, and the host registrations and heartbeat that say this process serves the hosts.
 */
export class ComputeNode {
  readonly agentId: string;
  private timers: NodeJS.Timeout[] = [];
  private readonly identity: { id: string; release(): void };
  private readonly ctx: NodeContext;
  private readonly worker: OperationWorker;
  private readonly reconciler: Reconciler;
  private readonly forwards: PortForwards;
  private stopWatchingPolicies: () => void = () => {};
  /** Called when another agent took this node's hosts over: it must stop at once (split-brain guard). */
  onLost: (hosts: string[]) => void = () => {};

  constructor(
    private readonly config: Config,
    private readonly store: Store,
    bus: EventBus,
    readonly hosts: Map<string, HypervisorDriver>,
    private readonly log: Logger,
  ) {
    this.identity = agentIdentity(config.dataDir, config.hostName);
    this.agentId = this.identity.id;
    const ctx = (this.ctx = new NodeContext(config, store, bus, hosts, log));
    this.worker = new OperationWorker(store, this.agentId, this.hostNames, log, (op) => perform(ctx, op));
    this.reconciler = new Reconciler(ctx);
    this.forwards = new PortForwards(ctx);
    for (const [host, driver] of hosts) {
      driver.onEvent((e) => void this.onGuestGone(host, e.uuid, e.type).catch((err) => this.log.error(err)));
      driver.onUsedUp?.(async (uuid, keys) => void (await ctx.transitionUsingUp(uuid, keys)));
    }
  }

  get hostNames(): string[] {
    return [...this.hosts.keys()];
  }

  async start(): Promise<void> {
    for (const [name, driver] of this.hosts) {
      const cap = driver.capacity();
      await this.store.hosts.register(
        { name, driver: driver.kind, cpu: cap.cpu, mem: cap.mem, public_host: this.config.publicHost, agent: this.agentId },
        this.config.heartbeatTimeoutMs,
      );
      this.log.info({ host: name, driver: driver.kind, accel: driver.accel, cpu: cap.cpu, mem: cap.mem }, 'compute host registered');
    }
    const retired = await retireHosts(this.store, this.agentId.slice(this.agentId.lastIndexOf('@') + 1), this.hostNames);
    const stoppedServers = retired.servers.map((s) => s.uuid);
    if (retired.hosts.length)
      this.log.warn({ hosts: retired.hosts, stopped_servers: stoppedServers }, 'hosts this data dir served before are not served now: down');
    for (const s of retired.servers) this.ctx.publish(s.uuid, s.owner, 'stopped');
    await this.worker.recoverUnfinished();
    await this.reconcile();
    await this.worker.start();
    this.timers.push(setInterval(() => void this.heartbeat().catch(() => {}), Math.max(50, this.config.heartbeatTimeoutMs / 5)));
    this.timers.push(setInterval(() => void refreshStats(this.store, this.hosts).catch((e) => this.log.warn(e, 'stats')), 2000));
    this.timers.push(setInterval(() => void this.reconcile().catch((e) => this.log.warn(e, 'reconcile')), this.config.reconcileIntervalMs));
    for (const t of this.timers) t.unref();
    this.stopWatchingPolicies = this.forwards.watch();
    this.poke();
  }

  /** New operations are waiting: claim them now rather than at the next poll. */
  poke(): void {
    this.worker.poke();
  }

  /** Resolves drives to image files and NICs to addresses. */
  guestSpec(def: ServerDef): Promise<GuestSpec> {
    return guestSpec(this.store, this.config, def);
  }

  /** Makes the database agree with what the drivers really run: no server stuck mid-transition, no orphan guest. */
  reconcile(): Promise<void> {
    return this.reconciler.reconcile();
  }

  private async heartbeat(): Promise<void> {
    const held = new Set(await this.store.hosts.heartbeat(this.agentId, this.hostNames));
    const lost = this.hostNames.filter((h) => !held.has(h));
    if (lost.length && this.worker.isRunning) {
      this.log.error({ hosts: lost }, 'another agent took over hosts of this one: stopping compute');
      this.worker.stop();
      this.onLost(lost);
    }
  }

  private async onGuestGone(host: string, uuid: string, why: string): Promise<void> {
    const s = await this.store.servers.get(uuid);
    this.log.info({ host, server: uuid, why }, 'guest went away');
    // A guest that powered itself off stopped as asked; one that crashed is a failure its owner must see.
    const what = why === 'crashed' ? { action: 'crashed', error: `The guest stopped unexpectedly on host ${host}` } : { action: 'stopped' };
    if (s && s.row.host === host && (s.status === 'running' || s.status === 'stopping'))
      await this.ctx.markStopped(uuid, s.owner, 'powered_off', s.status, [], what);
  }

  async stop(): Promise<void> {
    this.worker.stop();
    this.stopWatchingPolicies();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const gw of [...this.ctx.consoles.values(), ...this.ctx.vncs.values()]) await gw.close();
    this.ctx.consoles.clear();
    await handleGuestsAtExit(this.ctx).catch((e) => this.log.error({ err: e }, 'handling the guests at exit'));
    this.ctx.vncs.clear();
    for (const d of this.hosts.values()) await d.close();
    await this.store.hosts.release(this.agentId).catch(() => {});
    this.identity.release();
  }
}
