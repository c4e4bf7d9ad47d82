import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ServerDef } from '../domain/server-definition.ts';
import type { ServerRuntime } from '../domain/server-runtime.ts';
import { TENDED, allows, type ServerEvent } from '../domain/server-lifecycle.ts';
import { forwardedPorts } from '../domain/firewall.ts';
import { isoSeconds } from '../domain/ids.ts';
import { ref } from '../domain/refs.ts';
import type { EventBus } from '../events.ts';
import { DEFAULT_FORWARDED_PORTS, DriverError, usedUpBy, type GuestSpec, type HypervisorDriver } from '../hypervisor/driver.ts';
import type { Store } from '../store/index.ts';
import { OPS_CHANNEL, type Operation, type OperationKind } from '../store/operations.ts';
import { ConsoleGateway, HISTORY_BYTES } from './console.ts';
import { VncGateway } from './vnc-gateway.ts';
import { GuessThrottle } from '../domain/guess-throttle.ts';
import { guestSpec } from './guest-spec.ts';
import { refreshStats } from './stats.ts';
import { agentIdentity } from './identity.ts';
import { retireHosts } from './host-loss.ts';

export type { ServerRuntime };

/** Operations that decide a server's power state; the latest to finish wins over older unfinished ones. */
const POWER_OPS: OperationKind[] = ['start', 'stop', 'shutdown', 'restart'];
/** How often an agent looks for operations claimed in its name that it never received. */
const LOST_CLAIM_SCAN_MS = 2000;
/** Interrupted power operations are resumed after a restart this many times, then given up to reconciliation. */
const MAX_ATTEMPTS = 3;
/** How long a guest shut down at exit may take to answer the ACPI button before it is powered off. */
const EXIT_ACPI_S = 10;

/**
 * The compute side of opensigma: runs the hosts of one process (an agent, or the single `serve` process), claims
 * their operations, drives the hypervisor, and writes back what really happened. The only writer of runtime state.
 */
export class ComputeNode {
  readonly agentId: string;
  private timers: NodeJS.Timeout[] = [];
  private running = false;
  private polling = false;
  private readonly consoles = new Map<string, ConsoleGateway>();
  private readonly vncs = new Map<string, VncGateway>();
  /** Wrong console and VNC passwords, per source, across every server of this node. */
  private readonly guesses = new GuessThrottle();
  private readonly inFlight = new Set<Promise<void>>();
  /** Operations this process has started executing (a claimed operation missing here was lost on its way). */
  private launched = new Set<number>();
  private lastLostScan = 0;
  private reconciling: Promise<void> | null = null;
  private readonly identity: { id: string; release(): void };
  /** Called when another agent took this node's hosts over: it must stop at once (split-brain guard). */
  onLost: (hosts: string[]) => void = () => {};

  constructor(
    private readonly config: Config,
    private readonly store: Store,
    private readonly bus: EventBus,
    readonly hosts: Map<string, HypervisorDriver>,
    private readonly log: Logger,
  ) {
    this.identity = agentIdentity(config.dataDir, config.hostName);
    this.agentId = this.identity.id;
    for (const [host, driver] of hosts) {
      driver.onEvent((e) => void this.onGuestGone(host, e.uuid, e.type).catch((err) => this.log.error(err)));
      driver.onUsedUp?.(async (uuid, keys) => void (await this.transitionUsingUp(uuid, keys)));
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
    for (const s of retired.servers) this.publish(s.uuid, s.owner, 'stopped');
    await this.recoverUnfinished();
    await this.reconcile();
    this.running = true;
    // The payload names the host whose queue grew (empty: any host).
    await this.store.dialect.listen(OPS_CHANNEL, (host) => {
      if (!host || this.hosts.has(host)) this.poke();
    });
    this.timers.push(setInterval(() => this.poke(), 500));
    this.timers.push(setInterval(() => void this.heartbeat().catch(() => {}), Math.max(50, this.config.heartbeatTimeoutMs / 5)));
    this.timers.push(setInterval(() => void refreshStats(this.store, this.hosts).catch((e) => this.log.warn(e, 'stats')), 2000));
    this.timers.push(setInterval(() => void this.reconcile().catch((e) => this.log.warn(e, 'reconcile')), this.config.reconcileIntervalMs));
    for (const t of this.timers) t.unref();
    // A policy edited or attached takes effect on running guests at once, on whichever node edited it.
    this.stopWatchingPolicies = this.bus.subscribe((e) => {
      if (e.resource_type === 'fwpolicies' || (e.resource_type === 'servers' && e.action === 'updated'))
        void this.refreshForwards(e.resource_type, e.uuid).catch((err) =>
          this.log.warn({ err: (err as Error).message, uuid: e.uuid }, 'applying a firewall policy'),
        );
    });
    this.poke();
  }

  private stopWatchingPolicies: () => void = () => {};
  private readonly forwarding = new Map<string, Promise<void>>();

  /** Makes the forwarded ports of running guests follow their NICs' policies (a policy, or one server, changed). */
  private async refreshForwards(kind: string, uuid: string): Promise<void> {
    const servers = kind === 'servers' ? [uuid] : await this.store.serversUsingPolicy(uuid);
    for (const server of servers) {
      // One refresh at a time per server, in the order the changes came.
      const next = (this.forwarding.get(server) ?? Promise.resolve()).then(() => this.applyForwards(server));
      this.forwarding.set(
        server,
        next.catch(() => {}),
      );
      await next;
    }
  }

  private async applyForwards(uuid: string): Promise<void> {
    const s = await this.store.servers.get(uuid);
    if (!s || s.status !== 'running' || !s.row.host || !s.row.runtime) return;
    const driver = this.hosts.get(String(s.row.host));
    if (!driver?.setPortForwards) return;
    const rt = JSON.parse(String(s.row.runtime)) as ServerRuntime;
    const policies = await this.store.nicPolicies(uuid);
    for (const n of rt.nics) {
      if (n.interface_type !== 'public' || !n.ip_v4) continue;
      const ports = forwardedPorts(policies.get(n.mac), DEFAULT_FORWARDED_PORTS, { hostIp: this.bindHost(), guestIp: n.ip_v4 });
      await driver.setPortForwards(uuid, n.mac, ports);
      await driver.setOutboundRules?.(uuid, n.mac, policies.get(n.mac)?.rules);
    }
  }

  private async heartbeat(): Promise<void> {
    const held = new Set(await this.store.hosts.heartbeat(this.agentId, this.hostNames));
    const lost = this.hostNames.filter((h) => !held.has(h));
    if (lost.length && this.running) {
      this.log.error({ hosts: lost }, 'another agent took over hosts of this one: stopping compute');
      this.running = false;
      this.onLost(lost);
    }
  }

  /** New operations are waiting: claim them now rather than at the next poll. */
  poke(): void {
    if (!this.running) return;
    if (this.polling) {
      // The running poll may already have looked: look once more when it ends, not at the next timer tick.
      this.pokedAgain = true;
      return;
    }
    this.polling = true;
    this.pokedAgain = false;
    void this.pollOnce()
      .catch((e) => this.log.error(e, 'claiming operations'))
      .finally(() => {
        this.polling = false;
        if (this.pokedAgain) this.poke();
      });
  }

  private pokedAgain = false;

  private async pollOnce(): Promise<void> {
    if (Date.now() - this.lastLostScan >= LOST_CLAIM_SCAN_MS) {
      this.lastLostScan = Date.now();
      await this.runLostClaims();
    }
    for (;;) {
      const ops = await this.store.operations.claim(this.hostNames, this.agentId);
      if (ops.length === 0) return;
      for (const op of ops) this.launch(op);
    }
  }

  private launch(op: Operation): void {
    this.launched.add(op.id);
    const p = this.execute(op).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /**
   * A claim commits in the database before its answer reaches the agent; when the connection dies in between (a
   * database restart), the operations stay running under this agent's name and nobody runs them. Runs those.
   * Called between claims, so every operation this agent claimed is in `launched` or lost.
   */
  private async runLostClaims(): Promise<void> {
    const mine = await this.store.operations.claimedBy(this.agentId, this.hostNames);
    for (const op of mine) {
      if (this.launched.has(op.id)) continue;
      this.log.warn({ op: op.id, kind: op.kind, server: op.server_uuid }, 'running an operation whose claim was lost');
      this.launch(op);
    }
    // An operation launched earlier and not running now has finished for good: forget it.
    this.launched = new Set(mine.map((o) => o.id));
  }

  private driverFor(host: string): HypervisorDriver {
    const d = this.hosts.get(host);
    if (!d) throw new Error(`host ${host} is not run by this agent`);
    return d;
  }

  private publish(uuid: string, owner: string | null, action: string, error?: string): void {
    this.bus.publish({ resource_type: 'servers', resource_uri: ref('servers', uuid).resource_uri, uuid, owner, action, ...(error ? { error } : {}) });
  }

  private async execute(op: Operation): Promise<void> {
    const log = this.log.child({ op: op.id, kind: op.kind, server: op.server_uuid });
    let outcome: { state: 'done' | 'failed'; error: string | null; result: Record<string, unknown> | null };
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        outcome = { state: 'done', error: null, result: (await this.perform(op)) ?? null };
        break;
      } catch (e) {
        // The database went away mid-way (a restart): the operation was acknowledged, so do it again once the
        // database is back (its steps ask the driver first, so repeating one is safe) rather than fail it.
        if (this.running && this.store.dialect.isConnectionLoss(e)) {
          log.warn({ err: (e as Error).message }, 'database connection lost during an operation; trying again');
          await new Promise((r) => setTimeout(r, delay));
          continue;
        }
        log.warn({ err: (e as Error).message }, 'operation failed');
        outcome = { state: 'failed', error: (e as Error).message, result: null };
        break;
      }
    }
    // The database may be restarting: keep trying, so no claimed operation stays running forever.
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        // A hung older power operation (a start that never returned) must not keep reconciliation away from the
        // server: the outcome of this one supersedes it.
        const supersede = POWER_OPS.includes(op.kind) ? { server: op.server_uuid, kinds: POWER_OPS } : undefined;
        await this.store.operations.finish(op.id, outcome.state, outcome.error, outcome.result, undefined, supersede);
        break;
      } catch (e) {
        if (!this.running) return;
        log.warn({ err: (e as Error).message }, 'recording the outcome of an operation; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async perform(op: Operation): Promise<Record<string, unknown> | void> {
    const driver = this.driverFor(op.host);
    const s = await this.store.servers.get(op.server_uuid);
    switch (op.kind) {
      case 'start': {
        if (!s || s.status !== 'starting') return;
        return this.startGuest(op, driver, s.doc, s.owner);
      }
      case 'stop': {
        if (!s) return;
        try {
          await driver.powerOff(op.server_uuid, s.doc.meta);
        } catch (e) {
          if (!(e instanceof DriverError && e.code === 'not_found')) {
            // The guest may still run: show what the host says rather than a stopping that never ends.
            if (await this.isUp(driver, op.server_uuid)) {
              if (await this.transitionUsingUp(op.server_uuid, usedUpBy(e), { event: 'stop_failed' }))
                this.publish(op.server_uuid, s.owner, 'stop_failed', `The host could not stop the server: ${(e as Error).message}`);
            } else await this.markStopped(op.server_uuid, s.owner, 'powered_off', undefined, usedUpBy(e));
            throw e;
          }
        }
        await this.markStopped(op.server_uuid, s.owner);
        return;
      }
      case 'shutdown':
        return this.acpiShutdown(driver, op.server_uuid, s?.owner ?? null);
      case 'restart': {
        await driver.reset(op.server_uuid, s?.doc.meta).catch(async (e: unknown) => {
          await this.transitionUsingUp(op.server_uuid, usedUpBy(e));
          throw e;
        });
        const rt = s?.row.runtime ? (JSON.parse(String(s.row.runtime)) as ServerRuntime) : null;
        if (rt) {
          rt.active_since = isoSeconds(new Date());
          await this.store.servers.setColumns(op.server_uuid, { runtime: JSON.stringify(rt) });
        }
        this.publish(op.server_uuid, s?.owner ?? null, 'restarted');
        return;
      }
      case 'open_console': {
        let gw = this.consoles.get(op.server_uuid);
        if (!gw) {
          gw = new ConsoleGateway(
            this.bindHost(),
            async () => (await this.store.servers.get(op.server_uuid))?.doc.vnc_password ?? '\0',
            () => driver.attachSerial(op.server_uuid),
            async () => (await driver.serialHistory?.(op.server_uuid, HISTORY_BYTES)) ?? Buffer.alloc(0),
            this.guesses,
          );
          this.consoles.set(op.server_uuid, gw);
        }
        return { port: await gw.open() };
      }
      case 'close_console': {
        await this.consoles.get(op.server_uuid)?.close();
        this.consoles.delete(op.server_uuid);
        return;
      }
      case 'open_vnc': {
        // Every open gives a new endpoint, as CloudSigma's vnc_url changes on each open.
        await this.vncs.get(op.server_uuid)?.close();
        const upstream = await driver.openVnc(op.server_uuid, s?.doc.vnc_password ?? '');
        const password = async () => (await this.store.servers.get(op.server_uuid))?.doc.vnc_password ?? '\0';
        const gw = new VncGateway(this.bindHost(), { host: '127.0.0.1', port: upstream.port }, password, this.guesses);
        this.vncs.set(op.server_uuid, gw);
        return { port: await gw.open() };
      }
      case 'close_vnc':
        await this.vncs.get(op.server_uuid)?.close();
        this.vncs.delete(op.server_uuid);
        await driver.closeVnc(op.server_uuid);
        return;
    }
  }

  /** Consoles listen where the API does, so the URL's host reaches them. */
  private bindHost(): string {
    return this.config.listenHost;
  }

  private async isUp(driver: HypervisorDriver, uuid: string): Promise<boolean> {
    return (await driver.guests()).some((g) => g.uuid === uuid && g.state === 'running');
  }

  /**
   * Boots the guest of a start operation. Its outcome applies only while the operation is the server's current one:
   * a stop that finished meanwhile superseded it, and a start that came after that stop owns the server now.
   */
  private async startGuest(op: Operation, driver: HypervisorDriver, def: ServerDef, owner: string | null): Promise<void> {
    const host = op.host;
    let spec: GuestSpec;
    try {
      spec = await this.guestSpec(def);
      // A start resumed after a crash of this process may find its guest already booted: adopt it.
      if (!(await this.isUp(driver, def.uuid))) await driver.start(spec);
    } catch (e) {
      if (this.store.dialect.isConnectionLoss(e)) throw e; // not the guest's failure: the operation runs again
      if (await this.transitionUsingUp(def.uuid, usedUpBy(e), { event: 'boot_failed', whileOperation: op.id })) {
        await this.store.leases.release(def.uuid);
        this.publish(def.uuid, owner, 'start_failed', `The server did not start on host ${host}: ${(e as Error).message}`);
      }
      throw e;
    }
    const runtime: ServerRuntime = {
      active_since: isoSeconds(new Date()),
      nics: spec.nics.filter((n) => n.kind !== 'none').map((n) => ({ mac: n.mac, interface_type: n.kind as 'public' | 'private', ip_v4: n.ip })),
      io: { drives: {}, nics: {} },
    };
    const ok = await this.store.servers.applyEvent(def.uuid, 'booted', { columns: { runtime: JSON.stringify(runtime) }, whileOperation: op.id });
    if (ok === null) {
      // Deleted, stopped or superseded while booting. A later start on this host adopts the guest (or already did);
      // otherwise nothing may run that the database does not show.
      const now = await this.store.servers.get(def.uuid);
      if (now && now.row.host === host && (now.status === 'starting' || now.status === 'running')) return;
      await driver.powerOff(def.uuid).catch(() => {});
      await this.store.leases.release(def.uuid);
      return;
    }
    this.publish(def.uuid, owner, 'started');
  }

  /** Resolves drives to image files and NICs to addresses. */
  guestSpec(def: ServerDef): Promise<GuestSpec> {
    return guestSpec(this.store, this.config, def);
  }

  /** Presses the ACPI button every second until the guest is off or the timeout passes. */
  private async acpiShutdown(driver: HypervisorDriver, uuid: string, owner: string | null): Promise<void> {
    const deadline = Date.now() + this.config.acpiTimeoutS * 1000;
    while (Date.now() < deadline) {
      const s = await this.store.servers.get(uuid);
      if (!s || s.status !== 'stopping') return; // stopped by the guest, or by a hard stop meanwhile
      if (!(await this.isUp(driver, uuid))) {
        await this.markStopped(uuid, owner);
        return;
      }
      await driver.pressPowerButton(uuid, s.doc.meta).catch((e: unknown) => this.transitionUsingUp(uuid, usedUpBy(e)));
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (await this.isUp(driver, uuid)) {
      if ((await this.store.servers.applyEvent(uuid, 'shutdown_timeout')) !== null)
        this.publish(
          uuid,
          owner,
          'shutdown_timeout',
          `The guest did not power off within ${this.config.acpiTimeoutS} s of the ACPI button; it is still running`,
        );
    } else await this.markStopped(uuid, owner);
  }

  /** The guest is off: the server is stopped by `event`, if it still is in `seen` (what the caller saw) when given. */
  private async markStopped(
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
  private async transitionUsingUp(uuid: string, keys: string[], change?: { event: ServerEvent; seen?: string; whileOperation?: number }): Promise<boolean> {
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

  private async onGuestGone(host: string, uuid: string, why: string): Promise<void> {
    const s = await this.store.servers.get(uuid);
    this.log.info({ host, server: uuid, why }, 'guest went away');
    // A guest that powered itself off stopped as asked; one that crashed is a failure its owner must see.
    const what = why === 'crashed' ? { action: 'crashed', error: `The guest stopped unexpectedly on host ${host}` } : { action: 'stopped' };
    if (s && s.row.host === host && (s.status === 'running' || s.status === 'stopping'))
      await this.markStopped(uuid, s.owner, 'powered_off', s.status, [], what);
  }

  /**
   * Operations claimed before this host's agent died. A power operation was acknowledged to its caller, so it is
   * resumed (its steps ask the driver first, so repeating one is safe); the rest fail, and reconciliation then
   * makes the server agree with what the driver runs.
   */
  private async recoverUnfinished(): Promise<void> {
    const ops = await this.store.operations.unfinished(this.hostNames);
    for (const op of ops) {
      if (['start', 'stop', 'shutdown'].includes(op.kind) && op.attempts < MAX_ATTEMPTS) {
        this.log.info({ op: op.id, kind: op.kind, server: op.server_uuid }, 'resuming an interrupted operation');
        await this.store.operations.requeue(op.id);
      } else await this.store.operations.finish(op.id, 'failed', 'interrupted by a restart of the compute agent');
    }
  }

  /**
   * What a stopping compute process does with its guests (OPENSIGMA_ON_EXIT): leaves them running, saying so (the
   * next start of this host adopts them), or shuts them down (ACPI, then off after a bound) and records them stopped,
   * so no QEMU process or socket outlives its server.
   */
  private async onExit(): Promise<void> {
    const running: Array<{ host: string; driver: HypervisorDriver; uuid: string }> = [];
    for (const [host, driver] of this.hosts) for (const g of await driver.guests()) if (g.state === 'running') running.push({ host, driver, uuid: g.uuid });
    if (this.config.onExit !== 'shutdown') {
      if (running.length)
        this.log.warn(
          { servers: running.map((g) => g.uuid), hosts: [...new Set(running.map((g) => g.host))] },
          `leaving ${running.length} guest(s) running on purpose (OPENSIGMA_ON_EXIT=leave): ` +
            'the next start of this host adopts them; OPENSIGMA_ON_EXIT=shutdown shuts them down at exit',
        );
      return;
    }
    this.log.info({ servers: running.map((g) => g.uuid) }, `shutting down ${running.length} guest(s) before exit (OPENSIGMA_ON_EXIT=shutdown)`);
    const graceMs = Math.min(this.config.acpiTimeoutS, EXIT_ACPI_S) * 1000;
    await Promise.all(
      running.map(async ({ driver, uuid }) => {
        const s = await this.store.servers.get(uuid).catch(() => undefined);
        const deadline = Date.now() + graceMs;
        await driver.pressPowerButton(uuid, s?.doc.meta).catch(() => {});
        while (Date.now() < deadline && (await this.isUp(driver, uuid))) await new Promise((r) => setTimeout(r, 200));
        const warn = (what: string) => (e: unknown) => this.log.warn({ err: (e as Error).message, server: uuid }, what);
        if (await this.isUp(driver, uuid)) await driver.powerOff(uuid).catch(warn('powering off at exit'));
        if (s) await this.markStopped(uuid, s.owner).catch(warn('recording a guest stopped at exit'));
      }),
    );
    this.log.info({ servers: running.map((g) => g.uuid) }, 'guests shut down');
  }

  /** Makes the database agree with what the drivers really run: no server stuck mid-transition, no orphan guest. */
  reconcile(): Promise<void> {
    // One pass at a time: the timer may fire while a slow pass is still running.
    this.reconciling ??= this.reconcileOnce().finally(() => {
      this.reconciling = null;
    });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    for (const [host, driver] of this.hosts) {
      // Rows and busy servers first, the driver last: an operation that finishes meanwhile is then seen as busy or
      // as done on both sides, never as a row that is running with no guest yet.
      const rows = await this.store.servers.onHost(host);
      const busy = new Set(await this.store.operations.serversBusyOn(host));
      const guests = await driver.guests();
      const up = new Map(guests.filter((g) => g.state === 'running').map((g) => [g.uuid, g]));
      const known = new Set<string>();
      for (const r of rows) {
        known.add(r.uuid);
        if (busy.has(r.uuid)) continue;
        const guest = up.get(r.uuid);
        if (guest && (r.status === 'starting' || r.status === 'running' || r.status === 'unavailable')) {
          if (r.status !== 'running' || !r.runtime) {
            const spec = await this.guestSpec((await this.store.servers.get(r.uuid))!.doc);
            const runtime: ServerRuntime = {
              active_since: isoSeconds(guest.activeSince),
              nics: spec.nics.filter((n) => n.kind !== 'none').map((n) => ({ mac: n.mac, interface_type: n.kind as any, ip_v4: n.ip })),
              io: { drives: {}, nics: {} },
            };
            if ((await this.store.servers.applyEvent(r.uuid, 'found_running', { seen: r.status, columns: { runtime: JSON.stringify(runtime) } })) !== null)
              this.publish(r.uuid, r.owner, 'reconciled');
          }
        } else if (guest && r.status === 'stopping') {
          if ((await this.store.servers.applyEvent(r.uuid, 'found_running', { seen: 'stopping' })) !== null) this.publish(r.uuid, r.owner, 'reconciled');
        } else if (!guest && TENDED.includes(r.status)) {
          this.log.warn({ host, server: r.uuid, status: r.status }, 'no guest behind an active server: it is stopped');
          await this.markStopped(r.uuid, r.owner, 'found_no_guest', r.status);
        }
      }
      // A guest the database does not show as active on this host is an orphan: power it off.
      for (const uuid of up.keys()) {
        const r = rows.find((x) => x.uuid === uuid);
        if (known.has(uuid) && r && TENDED.includes(r.status)) continue;
        // Look again: it may have been started since the rows were read.
        const now = await this.store.servers.get(uuid);
        if (now && now.row.host === host && TENDED.includes(now.status)) continue;
        this.log.warn({ host, server: uuid }, 'powering off orphan guest');
        await driver.powerOff(uuid).catch(() => {});
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopWatchingPolicies();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const gw of [...this.consoles.values(), ...this.vncs.values()]) await gw.close();
    this.consoles.clear();
    await this.onExit().catch((e) => this.log.error({ err: e }, 'handling the guests at exit'));
    this.vncs.clear();
    for (const d of this.hosts.values()) await d.close();
    await this.store.hosts.release(this.agentId).catch(() => {});
    this.identity.release();
  }
}
