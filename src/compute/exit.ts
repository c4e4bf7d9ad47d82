import type { HypervisorDriver } from '../hypervisor/driver.ts';
import type { NodeContext } from './node-context.ts';

/** How long a guest shut down at exit may take to answer the ACPI button before it is powered off. */
const EXIT_ACPI_S = 10;

/**
 * What a stopping compute process does with its guests (OPENSIGMA_ON_EXIT): leaves them running, saying so (the
 * next start of this host adopts them), or shuts them down (ACPI, then off after a bound) and records them stopped,
 * so no QEMU process or socket outlives its server.
 */
export async function handleGuestsAtExit(ctx: NodeContext): Promise<void> {
  const { config, store, log } = ctx;
  const running: Array<{ host: string; driver: HypervisorDriver; uuid: string }> = [];
  for (const [host, driver] of ctx.hosts) for (const g of await driver.guests()) if (g.state === 'running') running.push({ host, driver, uuid: g.uuid });
  if (config.onExit !== 'shutdown') {
    if (running.length)
      log.warn(
        { servers: running.map((g) => g.uuid), hosts: [...new Set(running.map((g) => g.host))] },
        `leaving ${running.length} guest(s) running on purpose (OPENSIGMA_ON_EXIT=leave): ` +
          'the next start of this host adopts them; OPENSIGMA_ON_EXIT=shutdown shuts them down at exit',
      );
    return;
  }
  log.info({ servers: running.map((g) => g.uuid) }, `shutting down ${running.length} guest(s) before exit (OPENSIGMA_ON_EXIT=shutdown)`);
  const graceMs = Math.min(config.acpiTimeoutS, EXIT_ACPI_S) * 1000;
  await Promise.all(
    running.map(async ({ driver, uuid }) => {
      const s = await store.servers.get(uuid).catch(() => undefined);
      const deadline = Date.now() + graceMs;
      await driver.pressPowerButton(uuid, s?.doc.meta).catch(() => {});
      while (Date.now() < deadline && (await ctx.isUp(driver, uuid))) await new Promise((r) => setTimeout(r, 200));
      const warn = (what: string) => (e: unknown) => log.warn({ err: (e as Error).message, server: uuid }, what);
      if (await ctx.isUp(driver, uuid)) await driver.powerOff(uuid).catch(warn('powering off at exit'));
      if (s) await ctx.markStopped(uuid, s.owner).catch(warn('recording a guest stopped at exit'));
    }),
  );
  log.info({ servers: running.map((g) => g.uuid) }, 'guests shut down');
}
