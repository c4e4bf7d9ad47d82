import { IN_USE } from '../domain/server-lifecycle.ts';
import type { Services } from '../services.ts';
import type { DocTableName } from '../store/schema.ts';

export interface UsageLine {
  burst: number;
  subscribed: number;
  using: number;
}

/**
 * What an account really holds right now: cpu and memory of its running servers (in total and per CPU type), bytes
 * of drives per storage type, IPs and VLANs it holds, against what its active subscriptions cover. Nothing is
 * billed as burst here: an operator pricing at 0 has nothing to burst.
 */
export async function currentUsage(svc: Services, user: string): Promise<Record<string, UsageLine>> {
  const usage: Record<string, UsageLine> = {};
  const add = (k: string, using: number, subscribed = 0) => {
    const u = (usage[k] ??= { burst: 0, subscribed: 0, using: 0 });
    u.using += using;
    u.subscribed += subscribed;
  };
  for (const k of ['cpu', 'mem', 'tx', 'ip', 'vlan', 'sms', 'ssd']) add(k, 0);
  for (const t of Object.keys(svc.capabilities.hosts ?? {})) {
    add(`${t}_cpu`, 0);
    add(`${t}_mem`, 0);
  }
  for (const t of Object.keys(svc.capabilities.drives ?? {})) add(t, 0);

  for (const s of await svc.store.servers.ownedBy(user)) {
    if (!IN_USE.includes(s.status)) continue;
    const d = s.doc;
    add('cpu', d.cpu);
    add('mem', d.mem);
    if (d.cpu_type) {
      add(`${d.cpu_type}_cpu`, d.cpu);
      add(`${d.cpu_type}_mem`, d.mem);
    }
  }
  for (const r of await svc.store.drives.ownedBy(user)) add(r.doc.storage_type, Number(r.doc.size));
  const count = async (table: DocTableName) => {
    try {
      return await svc.store.countOwned(table, user);
    } catch {
      return 0; // networking not installed
    }
  };

  add('ip', await count('ips'));
  add('vlan', await count('vlans'));
  try {
    const subs = await svc.store.subscriptions.ownedBy(user);
    const now = new Date().toISOString();
    for (const s of subs) {
      const d = s.doc;
      if (s.status === 'expired' || Date.parse(d.end_time) <= Date.parse(now) || Date.parse(d.start_time) > Date.parse(now)) continue;
      add(d.resource === 'hdd' ? 'dssd' : d.resource, 0, Number(d.amount) || 0);
    }
  } catch {
    // no subscriptions table
  }
  return Object.fromEntries(
    Object.keys(usage)
      .sort()
      .map((k) => [k, usage[k]!]),
  );
}
