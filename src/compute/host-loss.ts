import type { Store } from '../store/index.ts';
import { spacedMicros } from '../domain/timestamps.ts';
import type { Db } from '../store/schema.ts';

export interface Settled {
  uuid: string;
  owner: string | null;
}

/** One entry of a server owner's audit log, written in the transaction that made the change it reports. */
async function audit(store: Store, trx: Db, s: Settled, action: string, opts: { error?: string; details?: string }): Promise<void> {
  if (!s.owner) return;
  await store.appendAudit(
    {
      owner: s.owner,
      actor: s.owner,
      resource_uuid: s.uuid,
      category: 'Servers',
      action,
      details: opts.details ?? '',
      success: opts.error ? 0 : 1,
      error_message: opts.error ?? '',
      error_point: null,
      error_type: opts.error ? 'backend' : null,
      timestamp: spacedMicros(),
    },
    trx,
  );
}

/**
 * Starts queued for hosts that are down and that no agent claimed: no guest was ever started, so the server goes
 * back to stopped, with the reason in its owner's audit log, instead of `starting` for as long as the host is away.
 */
export async function failUnclaimedStarts(store: Store, hosts: string[], trx: Db): Promise<Settled[]> {
  if (hosts.length === 0) return [];
  const ops = await store.operations.pendingStarts(hosts, trx);
  const out: Settled[] = [];
  for (const op of ops) {
    const reason = `the compute host ${op.host} is down: no agent serves it, so the server was not started`;
    await store.operations.failPending(op.id, reason, trx);
    const s = await store.servers.get(op.server_uuid, trx);
    if (!s || s.status !== 'starting' || s.row.host !== op.host) continue;
    if ((await store.servers.applyEvent(s.uuid, 'start_not_claimed', { seen: 'starting' }, trx)) === null) continue;
    await store.leases.release(s.uuid, trx);
    await audit(store, trx, s, 'start', { error: reason });
    out.push({ uuid: s.uuid, owner: s.owner });
  }
  return out;
}

/**
 * Hosts this node's data dir served under an earlier configuration (another driver, fewer sim hosts, another host
 * name) and serves no more: nothing runs their guests now, so they are marked down, their unfinished operations
 * fail, and the servers placed there become stopped, each with an entry in its owner's audit log.
 */
export async function retireHosts(store: Store, identity: string, serving: string[]): Promise<{ hosts: string[]; servers: Settled[] }> {
  return store.transaction(async (trx) => {
    const hosts = await store.hosts.retire(identity, serving, trx);
    if (hosts.length === 0) return { hosts, servers: [] };
    const reason = (h: string) => `the compute host ${h} is no longer served: its agent now runs ${serving.join(', ') || 'no host'}`;
    const servers: Settled[] = [];
    for (const h of hosts) servers.push(...(await stopServersOf(store, h, reason(h), trx)));
    return { hosts, servers };
  });
}

/** The servers placed on a host nothing serves become stopped, its unfinished operations fail; each owner is told why. */
async function stopServersOf(store: Store, host: string, reason: string, trx: Db): Promise<Settled[]> {
  await store.operations.failForHosts([host], reason, trx);
  const rows = await store.servers.placedOn(host, trx);
  const out: Settled[] = [];
  for (const r of rows) {
    if ((await store.servers.applyEvent(r.uuid, 'host_retired', {}, trx)) === null) continue;
    await store.leases.release(r.uuid, trx);
    await audit(store, trx, r, 'stop', { details: reason });
    out.push(r);
  }
  return out;
}

/**
 * `hosts remove --force`: forgets a host that is down (its agent gone for good) with the servers still placed there,
 * which become stopped (unavailable ones could otherwise never be stopped or deleted). Refused while it is up.
 */
export async function forgetHost(store: Store, name: string): Promise<{ removed: boolean; up: boolean; stopped: Settled[] }> {
  return store.transaction(async (trx) => {
    const state = await store.hosts.stateOf(name, trx);
    if (!state) return { removed: false, up: false, stopped: [] };
    if (state === 'up') return { removed: false, up: true, stopped: [] };
    const stopped = await stopServersOf(store, name, `the compute host ${name} was removed by its operator`, trx);
    await store.hosts.forget(name, trx);
    return { removed: true, up: false, stopped };
  });
}
