import { isoSeconds } from '../../domain/ids.ts';
import type { ServerRuntime } from '../../domain/server-runtime.ts';
import { usedUpBy, type GuestSpec } from '../../hypervisor/driver.ts';
import { guestSpec } from '../guest-spec.ts';
import type { Handler } from './types.ts';

/**
 * Boots the guest of a start operation. Its outcome applies only while the operation is the server's current one:
 * a stop that finished meanwhile superseded it, and a start that came after that stop owns the server now.
 */
export const start: Handler = async (ctx, op, driver, s) => {
  if (!s || s.status !== 'starting') return;
  const def = s.doc;
  const host = op.host;
  let spec: GuestSpec;
  try {
    spec = await guestSpec(ctx.store, ctx.config, def);
    // A start resumed after a crash of this process may find its guest already booted: adopt it.
    if (!(await ctx.isUp(driver, def.uuid))) await driver.start(spec);
  } catch (e) {
    if (ctx.store.dialect.isConnectionLoss(e)) throw e; // not the guest's failure: the operation runs again
    if (await ctx.transitionUsingUp(def.uuid, usedUpBy(e), { event: 'boot_failed', whileOperation: op.id })) {
      await ctx.store.leases.release(def.uuid);
      ctx.publish(def.uuid, s.owner, 'start_failed', `The server did not start on host ${host}: ${(e as Error).message}`);
    }
    throw e;
  }
  const runtime: ServerRuntime = {
    active_since: isoSeconds(new Date()),
    nics: spec.nics.filter((n) => n.kind !== 'none').map((n) => ({ mac: n.mac, interface_type: n.kind as 'public' | 'private', ip_v4: n.ip })),
    io: { drives: {}, nics: {} },
  };
  const ok = await ctx.store.servers.applyEvent(def.uuid, 'booted', { columns: { runtime: JSON.stringify(runtime) }, whileOperation: op.id });
  if (ok === null) {
    // Deleted, stopped or superseded while booting. A later start on this host adopts the guest (or already did);
    // otherwise nothing may run that the database does not show.
    const now = await ctx.store.servers.get(def.uuid);
    if (now && now.row.host === host && (now.status === 'starting' || now.status === 'running')) return;
    await driver.powerOff(def.uuid).catch(() => {});
    await ctx.store.leases.release(def.uuid);
    return;
  }
  ctx.publish(def.uuid, s.owner, 'started');
};
