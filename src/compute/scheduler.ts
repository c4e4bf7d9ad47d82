import { randomFraction } from '../domain/random.ts';
import type { HostRepo, HostRow, Usage } from '../store/hosts.ts';
import type { Db } from '../store/schema.ts';

/** A server unavailable (its agent is away) may still run there: it keeps its room until the agent reconciles it. */

export interface Placement {
  host: string;
}

/**
 * Chooses a host with room for (cpu, mem). `avoid` lists servers to keep apart from, in priority order: when no
 * host avoids all of them, the last ones are dropped until one does (best effort, never an error).
 *
 * Runs inside the caller's transaction and locks the one host it returns, re-checking its room after the lock,
 * so two API nodes cannot overbook it. Starts running at once spread over the hosts: a host another start holds
 * is passed over for the next best one, and waited for only when every candidate is held.
 */
export async function placeServer(trx: Db, hostRepo: HostRepo, need: { cpu: number; mem: number }, avoid: string[]): Promise<Placement | null> {
  const { hosts, usedBy } = await hostRepo.placeable(trx);
  if (hosts.length === 0) return null;
  const fits = (h: HostRow, used: Map<string, Usage>) => {
    const u = used.get(h.name) ?? { cpu: 0, mem: 0 };
    return u.cpu + need.cpu <= h.cpu && u.mem + need.mem <= h.mem;
  };
  const avoidHosts: string[] = [];
  if (avoid.length) {
    const rows = await hostRepo.hostsOf(trx, avoid);
    for (const a of avoid) avoidHosts.push(rows.find((r) => r.uuid === a)?.host ?? '');
  }
  const free = (h: HostRow) => h.mem - (usedBy.get(h.name)?.mem ?? 0);
  // Candidates best first: those that avoid every listed server, then those that avoid all but the last, ...
  const ranked: HostRow[] = [];
  for (let keep = avoidHosts.length; keep >= 0; keep--) {
    const banned = new Set(avoidHosts.slice(0, keep).filter(Boolean));
    // Most free memory first; the name breaks ties, so placement is deterministic.
    const level = hosts.filter((h) => !banned.has(h.name) && fits(h, usedBy) && !ranked.includes(h));
    ranked.push(...level.sort((a, b) => free(b) - free(a) || a.name.localeCompare(b.name)));
  }
  const tried = new Set<string>();
  // The best candidate no other start holds, in one round trip per try.
  for (;;) {
    const untried = ranked.filter((h) => !tried.has(h.name));
    if (untried.length === 0) return null;
    const got = await hostRepo.claimFirst(
      trx,
      untried.map((h) => h.name),
    );
    if (!got) break;
    tried.add(got);
    if (
      fits(
        untried.find((h) => h.name === got)!,
        await hostRepo.usageOf(trx, got),
      )
    )
      return { host: got };
  }
  // Every remaining candidate is held: wait for one. Waiters pick at random, so that they queue on every host
  // rather than all on the best one while the others free up.
  const rest = ranked.filter((h) => !tried.has(h.name)).sort(() => randomFraction('placement') - 0.5);
  for (const h of rest) {
    if ((await hostRepo.lockPlaceable(trx, h.name)) && fits(h, await hostRepo.usageOf(trx, h.name))) return { host: h.name };
  }
  return null;
}
