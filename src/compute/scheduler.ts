import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../store/dialect/index.ts';
import type { HostRow } from '../store/hosts.ts';

/** A server unavailable (its agent is away) may still run there: it keeps its room until the agent reconciles it. */
const HOLDS_CAPACITY = ['starting', 'running', 'stopping', 'unavailable'];

export interface Placement {
  host: string;
}

/**
 * Chooses a host with room for (cpu, mem). `avoid` lists servers to keep apart from, in priority order: when no
 * host avoids all of them, the last ones are dropped until one does (best effort, never an error).
 * Runs inside the caller's transaction; the host rows are locked so two API nodes cannot overbook.
 */
export async function placeServer(
  trx: Kysely<any>,
  dialect: Dialect,
  need: { cpu: number; mem: number },
  avoid: string[],
): Promise<Placement | null> {
  const hostsQ = trx.selectFrom('hosts').selectAll().where('state', '=', 'up').orderBy('name');
  const hosts: HostRow[] = (await dialect.lockRows(hostsQ).execute()).map((r: any) => ({
    ...r,
    cpu: Number(r.cpu),
    mem: Number(r.mem),
  }));
  if (hosts.length === 0) return null;
  const used = (await trx
    .selectFrom('servers')
    .select(['host', sql<number>`sum(cpu)`.as('cpu'), sql<number>`sum(mem)`.as('mem')])
    .where('host', 'is not', null)
    .where('status', 'in', HOLDS_CAPACITY)
    .groupBy('host')
    .execute()) as Array<{ host: string; cpu: number; mem: number }>;
  const usedBy = new Map(used.map((u) => [u.host, { cpu: Number(u.cpu), mem: Number(u.mem) }]));
  const fits = hosts.filter((h) => {
    const u = usedBy.get(h.name) ?? { cpu: 0, mem: 0 };
    return u.cpu + need.cpu <= h.cpu && u.mem + need.mem <= h.mem;
  });
  if (fits.length === 0) return null;
  const avoidHosts: string[] = [];
  if (avoid.length) {
    const rows = (await trx
      .selectFrom('servers')
      .select(['uuid', 'host'])
      .where('uuid', 'in', avoid)
      .where('status', 'in', HOLDS_CAPACITY)
      .execute()) as Array<{ uuid: string; host: string | null }>;
    for (const a of avoid) avoidHosts.push(rows.find((r) => r.uuid === a)?.host ?? '');
  }
  const free = (h: HostRow) => h.mem - (usedBy.get(h.name)?.mem ?? 0);
  for (let keep = avoidHosts.length; keep >= 0; keep--) {
    const banned = new Set(avoidHosts.slice(0, keep).filter(Boolean));
    const candidates = fits.filter((h) => !banned.has(h.name));
    if (candidates.length) {
      // Most free memory first; the name breaks ties, so placement is deterministic.
      candidates.sort((a, b) => free(b) - free(a) || a.name.localeCompare(b.name));
      return { host: candidates[0]!.name };
    }
  }
  return null;
}
