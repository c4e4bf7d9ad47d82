import { isoSeconds } from '../../domain/ids.ts';
import type { ServerRuntime } from '../../domain/server-runtime.ts';
import { usedUpBy } from '../../hypervisor/driver.ts';
import type { Handler } from './types.ts';

/** Resets the guest; its runtime then counts from the reset, as a rebooted machine's uptime does. */
export const restart: Handler = async (ctx, op, driver, s) => {
  await driver.reset(op.server_uuid, s?.doc.meta).catch(async (e: unknown) => {
    await ctx.transitionUsingUp(op.server_uuid, usedUpBy(e));
    throw e;
  });
  const rt = s?.row.runtime ? (JSON.parse(String(s.row.runtime)) as ServerRuntime) : null;
  if (rt) {
    rt.active_since = isoSeconds(new Date());
    await ctx.store.servers.setColumns(op.server_uuid, { runtime: JSON.stringify(rt) });
  }
  ctx.publish(op.server_uuid, s?.owner ?? null, 'restarted');
};
