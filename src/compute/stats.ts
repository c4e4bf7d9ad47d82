import type { ServerRuntime } from '../domain/server-runtime.ts';
import type { HypervisorDriver } from '../hypervisor/driver.ts';
import type { Store } from '../store/index.ts';

/** Runtime counters written per statement. */
const STATS_BATCH = 32;

/** Copies the drivers' I/O counters of running guests into their servers' runtime, where the API shows them. */
export async function refreshStats(store: Store, hosts: Map<string, HypervisorDriver>): Promise<void> {
  for (const [host, driver] of hosts) {
    const rows = await store.servers.runningOn(host);
    const changed: Array<[string, string]> = [];
    for (const r of rows) {
      if (!r.runtime) continue;
      const stats = await driver.stats(r.uuid).catch(() => null);
      if (!stats) continue;
      const rt = JSON.parse(r.runtime) as ServerRuntime;
      rt.io = { drives: stats.drives, nics: stats.nics };
      const next = JSON.stringify(rt);
      // Idle guests' counters do not move: a write per guest every period would load a shared database for nothing.
      if (next !== r.runtime) changed.push([r.uuid, next]);
    }
    // The busy ones are written STATS_BATCH to a statement rather than one each; a server that stopped meanwhile
    // keeps the runtime it lost.
    for (let i = 0; i < changed.length; i += STATS_BATCH) {
      const batch = changed.slice(i, i + STATS_BATCH);
      await store.servers.writeRuntimes(host, batch);
    }
  }
}
