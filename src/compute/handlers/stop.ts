import { DriverError, usedUpBy } from '../../hypervisor/driver.ts';
import type { Handler } from './types.ts';

/** Powers the guest off at once (a hard stop). */
export const stop: Handler = async (ctx, op, driver, s) => {
  if (!s) return;
  try {
    await driver.powerOff(op.server_uuid, s.doc.meta);
  } catch (e) {
    if (!(e instanceof DriverError && e.code === 'not_found')) {
      // The guest may still run: show what the host says rather than a stopping that never ends.
      if (await ctx.isUp(driver, op.server_uuid)) {
        if (await ctx.transitionUsingUp(op.server_uuid, usedUpBy(e), { event: 'stop_failed' }))
          ctx.publish(op.server_uuid, s.owner, 'stop_failed', `The host could not stop the server: ${(e as Error).message}`);
      } else await ctx.markStopped(op.server_uuid, s.owner, 'powered_off', undefined, usedUpBy(e));
      throw e;
    }
  }
  await ctx.markStopped(op.server_uuid, s.owner);
};
