import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';
import type { EventBus } from '../events.ts';
import { ref } from '../domain/refs.ts';
import { failUnclaimedStarts } from './host-loss.ts';

/**
 * Watches compute hosts from every process (API nodes and agents alike, so it works while any one of them runs):
 * a host whose agent stopped heartbeating is marked down, its servers become `unavailable` and its unfinished
 * operations fail explicitly. The agent, when it returns, reconciles those servers with what its driver runs.
 */
export class HostWatch {
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;

  constructor(
    private readonly store: Store,
    private readonly bus: EventBus,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(
      () => void this.sweep().catch((e) => this.log.warn({ err: (e as Error).message }, 'host sweep')),
      Math.max(100, this.timeoutMs / 4),
    );
    this.timer.unref();
  }

  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const reason = `the compute host stopped answering (no heartbeat for ${this.timeoutMs} ms)`;
      const { down, servers, notStarted } = await this.store.transaction(async (trx) => {
        const down = await this.store.hosts.markStale(this.timeoutMs, trx);
        const allDown = await this.store.hosts.downNames(trx);
        // A start no agent claimed never booted anything: stopped again, not unavailable.
        const notStarted = await failUnclaimedStarts(this.store, allDown, trx);
        await this.store.operations.failForHosts(allDown, reason, trx);
        const servers = await this.store.servers.applyEventOnHosts(allDown, 'host_lost', trx);
        return { down, servers, notStarted };
      });
      if (down.length) this.log.warn({ hosts: down, timeout_ms: this.timeoutMs }, 'compute hosts marked down');
      if (notStarted.length) this.log.warn({ servers: notStarted.map((s) => s.uuid) }, 'starts queued for hosts that are down failed');
      for (const s of notStarted)
        this.bus.publish({ resource_type: 'servers', resource_uri: ref('servers', s.uuid).resource_uri, uuid: s.uuid, owner: s.owner, action: 'start_failed' });
      for (const s of servers)
        this.bus.publish({ resource_type: 'servers', resource_uri: ref('servers', s.uuid).resource_uri, uuid: s.uuid, owner: s.owner, action: 'unavailable' });
    } finally {
      this.sweeping = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
