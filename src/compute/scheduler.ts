import { HOLDS_CAPACITY } from '../domain/server-lifecycle.ts';
import { sql } from 'kysely';
import type { Dialect } from '../store/dialect/index.ts';
import type { HostRow } from '../store/hosts.ts';
import type { Db } from '../store/schema.ts';

/** A server unavailable (its agent is away) may still run there: it keeps its room until the agent reconciles it. */

export interface Placement {
  host: string;
}

type Usage = { cpu: number; mem: number };

function usageQuery(trx: Db) {
  return trx
    .selectFrom('servers')
    .select(['host', sql<number>`sum(cpu)`.as('cpu'), sql<number>`sum(mem)`.as('mem')])
    .where('host', 'is not', null)
    .where('status', 'in', HOLDS_CAPACITY);
}

async function usageOf(trx: Db, host: string): Promise<Map<string, Usage>> {
  const rows = (await usageQuery(trx).where('host', '=', host).groupBy('host').execute()) as Array<{ host: string; cpu: number; mem: number }>;
  return new Map(rows.map((u) => [u.host, { cpu: Number(u.cpu), mem: Number(u.mem) }]));
}

/** The hosts that are up, each with what its servers hold, in one round trip. */
async function hostsWithUsage(trx: Db): Promise<{ hosts: HostRow[]; usedBy: Map<string, Usage> }> {
  const rows = (await trx
    .selectFrom('hosts')
    .leftJoin(usageQuery(trx).groupBy('host').as('u'), 'u.host', 'hosts.name')
    .selectAll('hosts')
    .select([sql<number>`coalesce(u.cpu, 0)`.as('used_cpu'), sql<number>`coalesce(u.mem, 0)`.as('used_mem')])
    .where('hosts.state', '=', 'up')
    .where('hosts.drained', '=', 0)
    .orderBy('hosts.name')
    .execute()) as any[];
  const usedBy = new Map<string, Usage>();
  const hosts = rows.map(({ used_cpu, used_mem, ...r }) => {
    usedBy.set(r.name, { cpu: Number(used_cpu), mem: Number(used_mem) });
    return { ...r, cpu: Number(r.cpu), mem: Number(r.mem) } as HostRow;
  });
  return { hosts, usedBy };
}

/**
 * Chooses a host with room for (cpu, mem). `avoid` lists servers to keep apart from, in priority order: when no
 * host avoids all of them, the last ones are dropped until one does (best effort, never an error).
 *
 * Runs inside the caller's transaction and locks the one host it returns, re-checking its room after the lock,
 * so two API nodes cannot overbook it. Starts running at once spread over the hosts: a host another start holds
 * is passed over for the next best one, and waited for only when every candidate is held.
 */
export async function placeServer(trx: Db, dialect: Dialect, need: { cpu: number; mem: number }, avoid: string[]): Promise<Placement | null> {
  const { hosts, usedBy } = await hostsWithUsage(trx);
  if (hosts.length === 0) return null;
  const fits = (h: HostRow, used: Map<string, Usage>) => {
    const u = used.get(h.name) ?? { cpu: 0, mem: 0 };
    return u.cpu + need.cpu <= h.cpu && u.mem + need.mem <= h.mem;
  };
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
  // Candidates best first: those that avoid every listed server, then those that avoid all but the last, ...
  const ranked: HostRow[] = [];
  for (let keep = avoidHosts.length; keep >= 0; keep--) {
    const banned = new Set(avoidHosts.slice(0, keep).filter(Boolean));
    // Most free memory first; the name breaks ties, so placement is deterministic.
    const level = hosts.filter((h) => !banned.has(h.name) && fits(h, usedBy) && !ranked.includes(h));
    ranked.push(...level.sort((a, b) => free(b) - free(a) || a.name.localeCompare(b.name)));
  }
  const lock = trx.selectFrom('hosts').select('name').where('state', '=', 'up').where('drained', '=', 0);
  const tried = new Set<string>();
  // The best candidate no other start holds, in one round trip per try.
  for (;;) {
    const untried = ranked.filter((h) => !tried.has(h.name));
    if (untried.length === 0) return null;
    const rank = sql`case ${sql.ref('name')} ${sql.join(
      untried.map((h, i) => sql`when ${h.name} then ${sql.lit(i)}`),
      sql` `,
    )} end`;
    const q = lock
      .where(
        'name',
        'in',
        untried.map((h) => h.name),
      )
      .orderBy(rank)
      .limit(1);
    const got = (await dialect.claimRows(q).executeTakeFirst()) as { name: string } | undefined;
    if (!got) break;
    tried.add(got.name);
    if (
      fits(
        untried.find((h) => h.name === got.name)!,
        await usageOf(trx, got.name),
      )
    )
      return { host: got.name };
  }
  // Every remaining candidate is held: wait for one. Waiters pick at random, so that they queue on every host
  // rather than all on the best one while the others free up.
  const rest = ranked.filter((h) => !tried.has(h.name)).sort(() => Math.random() - 0.5);
  for (const h of rest) {
    const got = await dialect.lockRows(lock.where('name', '=', h.name)).executeTakeFirst();
    if (got && fits(h, await usageOf(trx, h.name))) return { host: h.name };
  }
  return null;
}
