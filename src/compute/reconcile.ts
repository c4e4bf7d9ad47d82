import { isoSeconds } from '../domain/ids.ts';
import { TENDED } from '../domain/server-lifecycle.ts';
import type { ServerRuntime } from '../domain/server-runtime.ts';
import type { HypervisorDriver } from '../hypervisor/driver.ts';
import { guestSpec } from './guest-spec.ts';
import type { NodeContext } from './node-context.ts';

/** Makes the database agree with what the drivers really run: no server stuck mid-transition, no orphan guest. */
export class Reconciler {
  private reconciling: Promise<void> | null = null;

  constructor(private readonly ctx: NodeContext) {}

  reconcile(): Promise<void> {
    // One pass at a time: the timer may fire while a slow pass is still running.
    this.reconciling ??= this.reconcileOnce().finally(() => {
      this.reconciling = null;
    });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const { store, log } = this.ctx;
    for (const [host, driver] of this.ctx.hosts) {
      // Rows and busy servers first, the driver last: an operation that finishes meanwhile is then seen as busy or
      // as done on both sides, never as a row that is running with no guest yet.
      const rows = await store.servers.onHost(host);
      const busy = new Set(await store.operations.serversBusyOn(host));
      const guests = await driver.guests();
      const up = new Map(guests.filter((g) => g.state === 'running').map((g) => [g.uuid, g]));
      for (const r of rows) {
        if (busy.has(r.uuid)) continue;
        const guest = up.get(r.uuid);
        if (guest && (r.status === 'starting' || r.status === 'running' || r.status === 'unavailable')) {
          if (r.status !== 'running' || !r.runtime) {
            const spec = await guestSpec(store, this.ctx.config, (await store.servers.get(r.uuid))!.doc);
            const runtime: ServerRuntime = {
              active_since: isoSeconds(guest.activeSince),
              nics: spec.nics.filter((n) => n.kind !== 'none').map((n) => ({ mac: n.mac, interface_type: n.kind as 'public' | 'private', ip_v4: n.ip })),
              io: { drives: {}, nics: {} },
            };
            if ((await store.servers.applyEvent(r.uuid, 'found_running', { seen: r.status, columns: { runtime: JSON.stringify(runtime) } })) !== null)
              this.ctx.publish(r.uuid, r.owner, 'reconciled');
          }
        } else if (guest && r.status === 'stopping') {
          if ((await store.servers.applyEvent(r.uuid, 'found_running', { seen: 'stopping' })) !== null) this.ctx.publish(r.uuid, r.owner, 'reconciled');
        } else if (!guest && TENDED.includes(r.status)) {
          log.warn({ host, server: r.uuid, status: r.status }, 'no guest behind an active server: it is stopped');
          await this.ctx.markStopped(r.uuid, r.owner, 'found_no_guest', r.status);
        }
      }
      await this.powerOffOrphans(host, driver, rows, [...up.keys()]);
    }
  }

  /** A guest the database does not show as active on this host is an orphan: power it off. */
  private async powerOffOrphans(host: string, driver: HypervisorDriver, rows: Array<{ uuid: string; status: string }>, up: string[]): Promise<void> {
    for (const uuid of up) {
      const r = rows.find((x) => x.uuid === uuid);
      if (r && TENDED.includes(r.status)) continue;
      // Look again: it may have been started since the rows were read.
      const now = await this.ctx.store.servers.get(uuid);
      if (now && now.row.host === host && TENDED.includes(now.status)) continue;
      this.ctx.log.warn({ host, server: uuid }, 'powering off orphan guest');
      await driver.powerOff(uuid).catch(() => {});
    }
  }
}
