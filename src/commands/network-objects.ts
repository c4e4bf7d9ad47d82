import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { readMeta } from '../domain/input.ts';
import { API, readRefList } from '../domain/refs.ts';
import { runsAt } from '../domain/subscription-terms.ts';
import type { Stored } from '../store/documents.ts';
import type { Store } from '../store/index.ts';
import type { Db } from '../store/schema.ts';
import type { Actor } from './servers.ts';

/** What IPs, VLANs and subscriptions share: how they name each other, paging, who sees which servers. */

export const subscriptionRef = (id: number | null) => (id === null ? null : { id, resource_uri: `${API}/subscriptions/${id}/` });

/** Pages a list held in memory the way the store pages a table. */
export function page<T>(items: T[], q: { limit: number; offset: number }): T[] {
  return q.limit > 0 ? items.slice(q.offset, q.offset + q.limit) : items.slice(q.offset);
}

/** The servers among `uuids` the actor may see (his own, and those shared with him with LIST). */
export async function seenBy(svc: Services, actor: Actor, uuids: string[]): Promise<string[]> {
  if (uuids.length === 0) return [];
  const seen = await svc.acl.visibleAmong(actor, 'servers', await svc.acl.ownersOf('servers', uuids));
  return uuids.filter((u) => seen.has(u));
}

/** meta and tags are what may change of an IP or VLAN; a tag must be the actor's. */
export async function applyEditable(svc: Services, actor: Actor, doc: { meta: Record<string, string>; tags: string[] }, body: Record<string, unknown>) {
  if (body.meta !== undefined) doc.meta = readMeta(body.meta, 'meta');
  if (body.tags !== undefined) {
    const tags = readRefList(body.tags, 'tags');
    const found = await svc.store.tags.getMany(tags);
    for (const t of tags) if (!found.some((x) => x.uuid === t && x.owner === actor.user)) throw errors.invalid('tags', `Tag ${t} does not exist`);
    doc.tags = tags;
  }
}

/**
 * The IPs or VLANs among `objs` whose subscription chain still runs at `now`: the link holding it, or a later link
 * it goes to. The sweep frees the others once no server uses them, in the background; reads leave them out
 * meanwhile, so a client sees an ended subscription's object go when the subscription ends, not when the sweep
 * comes. One without a subscription to judge by is kept, as the sweep keeps it.
 */
export async function chainsRunning(
  store: Store,
  objs: Array<Stored<{ uuid: string; subscription: number | null }>>,
  now: Date,
  trx: Db = store.db,
): Promise<Set<string>> {
  const judged = objs.filter((o) => o.doc.subscription !== null);
  const links = new Map(
    (
      await store.subscriptions.bySeqs(
        judged.map((o) => o.doc.subscription!),
        trx,
      )
    ).map((s) => [s.seq, s]),
  );
  const ended = judged.filter((o) => {
    const link = links.get(o.doc.subscription!);
    return link && !runsAt(link, now);
  });
  // Only the links that ended need the rest of their chain read.
  const later = await store.subscriptions.bySeqs(
    ended.flatMap((o) => links.get(o.doc.subscription!)!.doc.descendants),
    trx,
  );
  const laterRunning = new Set(later.filter((s) => runsAt(s, now)).map((s) => s.seq));
  const stopped = new Set(ended.filter((o) => !links.get(o.doc.subscription!)!.doc.descendants.some((d) => laterRunning.has(d))).map((o) => o.uuid));
  return new Set(objs.filter((o) => !stopped.has(o.uuid)).map((o) => o.uuid));
}
