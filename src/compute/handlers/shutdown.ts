import { usedUpBy } from '../../hypervisor/driver.ts';
import type { Handler } from './types.ts';

/** Presses the ACPI button every second until the guest is off or the timeout passes. */
export const shutdown: Handler = async (ctx, op, driver, first) => {
  const uuid = op.server_uuid;
  const owner = first?.owner ?? null;
  const deadline = Date.now() + ctx.config.acpiTimeoutS * 1000;
  while (Date.now() < deadline) {
    const s = await ctx.store.servers.get(uuid);
    if (!s || s.status !== 'stopping') return; // stopped by the guest, or by a hard stop meanwhile
    if (!(await ctx.isUp(driver, uuid))) {
      await ctx.markStopped(uuid, owner);
      return;
    }
    await driver.pressPowerButton(uuid, s.doc.meta).catch((e: unknown) => ctx.transitionUsingUp(uuid, usedUpBy(e)));
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (await ctx.isUp(driver, uuid)) {
    if ((await ctx.store.servers.applyEvent(uuid, 'shutdown_timeout')) !== null)
      ctx.publish(uuid, owner, 'shutdown_timeout', `The guest did not power off within ${ctx.config.acpiTimeoutS} s of the ACPI button; it is still running`);
  } else await ctx.markStopped(uuid, owner);
};
