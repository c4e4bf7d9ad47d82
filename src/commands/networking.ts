import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { allocateAddress, isIpv4, parsePool, type Pool } from '../domain/cidr.ts';
import { newUuid, isoMicros } from '../domain/ids.ts';
import { readMeta, withoutTags } from '../domain/input.ts';
import { ownerRef, ref, readRefList, API } from '../domain/refs.ts';
import type { IpConf, ServerDef } from '../domain/server-definition.ts';
import { addPeriod, nextNoon, OBJECT_RESOURCES, readSubscriptionRequest, timedelta } from '../domain/subscription-terms.ts';
import type { ListQuery, Stored } from '../store/documents.ts';
import type { Lease } from '../store/leases.ts';
import type { IpDoc, SubscriptionDoc, VlanDoc } from '../store/index.ts';
import type { Actor } from './servers.ts';
import type { Db } from '../store/schema.ts';

/** Status of an IP or VLAN whose subscription chain ended while a server used it (otherwise ''). */
const ENDED = 'ended';

const subscriptionRef = (id: number | null) => (id === null ? null : { id, resource_uri: `${API}/subscriptions/${id}/` });

/** Static addresses a definition's NICs use, with the field that names them. */
export function staticIps(def: Pick<ServerDef, 'nics'> | null): Array<{ ip: string; point: string }> {
  const out: Array<{ ip: string; point: string }> = [];
  for (const n of def?.nics ?? [])
    for (const [key, conf] of [
      ['ip_v4_conf', n.ip_v4_conf],
      ['ip_v6_conf', n.ip_v6_conf],
    ] as Array<[string, IpConf | null]>)
      if (conf?.conf === 'static' && conf.ip) out.push({ ip: conf.ip, point: `nics.${key}.ip` });
  return out;
}

/** Pages a list held in memory the way the store pages a table. */
function page<T>(items: T[], q: { limit: number; offset: number }): T[] {
  return q.limit > 0 ? items.slice(q.offset, q.offset + q.limit) : items.slice(q.offset);
}

/**
 * IPs, VLANs and the subscriptions that hand them out. An account holds an address or a VLAN for as long as its
 * subscription runs; servers refer to them from their NICs, which is what `server` / `servers` show.
 */
export class NetworkCommands {
  readonly ipPool: Pool;
  readonly dhcpPool: Pool;

  constructor(private readonly svc: Services) {
    this.ipPool = parsePool(svc.config.ipPool, 'OPENSIGMA_IP_POOL');
    this.dhcpPool = parsePool(svc.config.dhcpPool, 'OPENSIGMA_DHCP_POOL');
  }

  private get store() {
    return this.svc.store;
  }

  // ---- who uses what ----

  /** Servers whose NICs have `ip` as a static address. */
  async serversUsingIp(ip: string, trx: Db = this.store.db): Promise<string[]> {
    return this.store.servers.referencing('ip', ip, ['static'], trx);
  }

  /** The first server holding each static address: one read for a whole list. */
  async staticHolders(): Promise<Map<string, string>> {
    return this.store.servers.staticHolders();
  }

  async serversInVlan(vlan: string, trx: Db = this.store.db): Promise<string[]> {
    return this.store.servers.referencing('vlan', vlan, undefined, trx);
  }

  private async leases(where: { owner?: string; ip?: string }): Promise<Lease[]> {
    return this.store.leases.active(where);
  }

  // ---- rendering ----

  private ipCommon(uuid: string, pool: Pool) {
    return { gateway: pool.gateway, nameservers: this.svc.config.nameservers, netmask: pool.prefix, resource_uri: ref('ips', uuid).resource_uri, uuid };
  }

  /** `holders`: the holders of many addresses for a list, already narrowed to the servers the actor may see. */
  async renderIp(actor: Actor, ip: Stored<IpDoc>, holders?: Map<string, string>) {
    const deco = await this.svc.decorations(actor, 'ips', ip.uuid);
    // Only a server the viewer may see himself is named: an address lent to a grantee does not tell of his servers.
    const server = holders ? holders.get(ip.uuid) : (await this.seenBy(actor, (await this.serversUsingIp(ip.uuid)).slice(0, 1)))[0];
    const c = this.ipCommon(ip.uuid, this.ipPool);
    return {
      gateway: c.gateway,
      grantees: deco.grantees ?? [],
      meta: ip.doc.meta,
      nameservers: c.nameservers,
      netmask: c.netmask,
      owner: ownerRef(ip.owner),
      permissions: deco.permissions ?? [],
      resource_uri: c.resource_uri,
      server: server ? ref('servers', server) : null,
      subscription: subscriptionRef(ip.doc.subscription),
      tags: deco.tags ?? ip.doc.tags.map((t) => ref('tags', t)),
      uuid: ip.uuid,
    };
  }

  renderLease(l: Lease) {
    const c = this.ipCommon(l.ip, this.dhcpPool);
    return {
      gateway: c.gateway,
      grantees: [],
      meta: {},
      nameservers: c.nameservers,
      netmask: c.netmask,
      owner: ownerRef(l.owner),
      permissions: [],
      resource_uri: c.resource_uri,
      server: ref('servers', l.server_uuid),
      subscription: null,
      tags: [],
      uuid: l.ip,
    };
  }

  async renderVlan(actor: Actor, v: Stored<VlanDoc>) {
    const deco = await this.svc.decorations(actor, 'vlans', v.uuid);
    return {
      bottom_vlan_tag: null,
      grantees: deco.grantees ?? [],
      meta: v.doc.meta,
      owner: ownerRef(v.owner),
      permissions: deco.permissions ?? [],
      resource_uri: ref('vlans', v.uuid).resource_uri,
      servers: (await this.seenBy(actor, await this.serversInVlan(v.uuid))).map((s) => ref('servers', s)),
      subscription: subscriptionRef(v.doc.subscription),
      tags: deco.tags ?? v.doc.tags.map((t) => ref('tags', t)),
      uuid: v.uuid,
    };
  }

  /** Any address under /ips/ rendered for the actor, or null when they may not see it. Used by notifications too. */
  async renderIpById(actor: Actor, ip: string) {
    const owned = await this.store.ips.get(ip);
    if (owned) return (await this.svc.access.canSee(actor, 'ips', owned)) ? this.renderIp(actor, owned) : null;
    const lease = (await this.leases({ ip }))[0];
    return lease && lease.owner === actor.user ? this.renderLease(lease) : null;
  }

  /** The servers among `uuids` the actor may see (his own, and those shared with him with LIST). */
  private async seenBy(actor: Actor, uuids: string[]): Promise<string[]> {
    if (uuids.length === 0) return [];
    const seen = await this.svc.acl.visibleAmong(actor, 'servers', await this.svc.acl.ownersOf('servers', uuids));
    return uuids.filter((u) => seen.has(u));
  }

  // ---- /ips/ ----

  /**
   * The actor's addresses: bought ones, then the DHCP addresses of their running servers. DHCP addresses have no
   * name, meta or tags, so any filter on those leaves them out.
   */
  async listIps(actor: Actor, q: ListQuery, full: boolean) {
    await this.sweep(actor.user);
    const { items } = await this.store.ips.list({ ...q, limit: 0, offset: 0, ...(await this.svc.access.listScope(actor, 'ips')) });
    const out: unknown[] = [];
    const holders = await this.staticHolders();
    // A list names only the holders the actor may see, as renderIp does.
    const seen = new Set(await this.seenBy(actor, [...new Set(items.flatMap((ip) => holders.get(ip.uuid) ?? []))]));
    for (const [ip, holder] of holders) if (!seen.has(holder)) holders.delete(ip);
    for (const ip of items) out.push(full ? await this.renderIp(actor, ip, holders) : this.shortIp(ip.owner, ip.uuid, holders.get(ip.uuid) ?? null));
    const onlyUuid = q.conditions.every((c) => c.column === 'uuid' && c.op === 'exact');
    if (onlyUuid && !q.tags.length && !q.tagNames.length) {
      const wanted = q.conditions.map((c) => new Set(c.values));
      for (const l of await this.leases({ owner: actor.user }))
        if (wanted.every((w) => w.has(l.ip))) out.push(full ? this.renderLease(l) : this.shortIp(l.owner, l.ip, l.server_uuid));
    }
    return { total: out.length, items: page(out, q) };
  }

  private shortIp(owner: string | null, ip: string, server: string | null) {
    return { owner: ownerRef(owner), resource_uri: ref('ips', ip).resource_uri, server: server ? ref('servers', server) : null, uuid: ip };
  }

  async getIp(actor: Actor, ip: string) {
    await this.sweep(actor.user);
    const out = isIpv4(ip) ? await this.renderIpById(actor, ip) : null;
    if (!out) throw errors.notFound('IP');
    return out;
  }

  /** meta and tags are what may change; everything else is read-only and ignored. */
  async updateIp(actor: Actor, ip: string, body: Record<string, unknown>) {
    const cur = isIpv4(ip) ? await this.store.ips.get(ip) : undefined;
    if (!cur || !(await this.svc.access.canSee(actor, 'ips', cur))) {
      if (isIpv4(ip) && (await this.leases({ ip, owner: actor.user })).length) throw errors.dynamicIp(ip);
      throw errors.notFound('IP');
    }
    if (!(await this.svc.access.canEdit(actor, 'ips', cur))) throw errors.permission('You may not edit this IP');
    const doc = structuredClone(cur.doc);
    await this.applyEditable(actor, doc, cur.owner === actor.user ? body : withoutTags(body));
    await this.store.transaction(async (trx) => {
      await this.store.ips.update(doc, {}, trx);
      await this.store.ips.setTags(doc.uuid, doc.tags, trx);
    });
    this.svc.publish('ips', ip, cur.owner, 'updated', actor);
    return this.renderIp(actor, (await this.store.ips.get(ip))!);
  }

  private async applyEditable(actor: Actor, doc: { meta: Record<string, string>; tags: string[] }, body: Record<string, unknown>) {
    if (body.meta !== undefined) doc.meta = readMeta(body.meta, 'meta');
    if (body.tags !== undefined) {
      const tags = readRefList(body.tags, 'tags');
      const found = await this.store.tags.getMany(tags);
      for (const t of tags) if (!found.some((x) => x.uuid === t && x.owner === actor.user)) throw errors.invalid('tags', `Tag ${t} does not exist`);
      doc.tags = tags;
    }
  }

  // ---- /vlans/ ----

  async listVlans(actor: Actor, q: ListQuery) {
    await this.sweep(actor.user);
    return this.store.vlans.list({ ...q, ...(await this.svc.access.listScope(actor, 'vlans')) });
  }

  async loadVlan(actor: Actor, uuid: string): Promise<Stored<VlanDoc>> {
    await this.sweep(actor.user);
    const v = await this.store.vlans.get(uuid);
    if (!v || !(await this.svc.access.canSee(actor, 'vlans', v))) throw errors.notFound('VLAN');
    return v;
  }

  async updateVlan(actor: Actor, uuid: string, body: Record<string, unknown>) {
    const cur = await this.loadVlan(actor, uuid);
    if (!(await this.svc.access.canEdit(actor, 'vlans', cur))) throw errors.permission('You may not edit this VLAN');
    const doc = structuredClone(cur.doc);
    await this.applyEditable(actor, doc, cur.owner === actor.user ? body : withoutTags(body));
    await this.store.transaction(async (trx) => {
      await this.store.vlans.update(doc, {}, trx);
      await this.store.vlans.setTags(doc.uuid, doc.tags, trx);
    });
    this.svc.publish('vlans', uuid, cur.owner, 'updated', actor);
    return this.renderVlan(actor, (await this.store.vlans.get(uuid))!);
  }

  // ---- server NICs ----

  /**
   * The networking rules of a server definition: a static address must be the actor's and on no other server; a
   * VLAN must be the actor's. Only references new to this definition are checked, so an edit never fails over
   * what the server already had.
   */
  readonly checkNics = async (actor: Actor, def: ServerDef, previous: ServerDef | null, trx: Db): Promise<void> => {
    const had = new Set(staticIps(previous).map((s) => s.ip));
    const seen = new Set<string>();
    for (const { ip, point } of staticIps(def)) {
      if (seen.has(ip)) throw errors.invalid(point, `IP address ${ip} is given to two NICs of this server`);
      seen.add(ip);
      if (had.has(ip)) continue;
      // The row is locked before it is read: two requests attaching one address take turns (the second sees the
      // first), and a sweep freeing it either went first (the row is gone) or waits and then sees this server.
      const owned = isIpv4(ip) && (await this.lockRow('ips', ip, trx)) ? await this.store.ips.get(ip, trx) : undefined;
      // An address whose subscription ended is only kept for the server still using it.
      if (!owned || owned.status === ENDED || !(await this.svc.access.canUse(actor, 'ips', owned, trx))) throw errors.ipNotYours(ip, point);
      const users = (await this.serversUsingIp(ip, trx)).filter((s) => s !== def.uuid);
      if (users.length) throw errors.ipInUse(ip, users[0]!, point);
    }
    const hadVlans = new Set(previous?.nics.map((n) => n.vlan) ?? []);
    for (const n of def.nics) {
      if (!n.vlan || hadVlans.has(n.vlan)) continue;
      const v = (await this.lockRow('vlans', n.vlan, trx)) ? await this.store.vlans.get(n.vlan, trx) : undefined;
      if (!v || v.status === ENDED || !(await this.svc.access.canUse(actor, 'vlans', v, trx))) throw errors.vlanNotYours(n.vlan);
    }
  };

  /**
   * Locks an IP's or VLAN's row until the transaction ends; false when there is none. Attaching one to a server and
   * freeing it both lock it first, so they exclude each other (SQLite's single writer already does).
   */
  private async lockRow(kind: 'ips' | 'vlans', uuid: string, trx: Db): Promise<boolean> {
    return !!(await this.store.dialect.lockRows(trx.selectFrom(kind).select('uuid').where('uuid', '=', uuid)).executeTakeFirst());
  }

  // ---- /subscriptions/ ----

  renderSubscription(s: Stored<SubscriptionDoc>, now = new Date()) {
    const d = s.doc;
    const start = new Date(d.start_time);
    const end = new Date(d.end_time);
    const status = s.status === 'expired' || end <= now ? 'expired' : start > now ? 'inactive' : 'active';
    return {
      amount: d.amount,
      auto_renew: d.auto_renew,
      descendants: d.descendants.map((id) => subscriptionRef(id)),
      discount_amount: null,
      discount_percent: null,
      discounts: null,
      end_time: d.end_time,
      free_tier: false,
      id: String(s.seq),
      period: timedelta(end.getTime() - start.getTime()),
      price: d.price,
      remaining: d.amount,
      resource: d.resource,
      resource_uri: `${API}/subscriptions/${s.seq}/`,
      start_time: d.start_time,
      status,
      subscribed_object: d.subscribed_object,
      uuid: d.uuid,
      was_billed: true,
    };
  }

  async listSubscriptions(actor: Actor, query: Record<string, string | undefined>, q: { limit: number; offset: number }) {
    await this.sweep(actor.user);
    const { items } = await this.store.subscriptions.list({
      owner: actor.user,
      conditions: [],
      tags: [],
      tagNames: [],
      limit: 0,
      offset: 0,
      orderBy: { column: 'seq', desc: true },
    });
    const objects = this.filterSubscriptions(
      items.map((s) => this.renderSubscription(s)),
      query,
    );
    return { total: objects.length, items: page(objects, q) };
  }

  /** ?status= (default all), ?resource= (hdd is dssd), ?subscribed_object=, each a comma list. */
  private filterSubscriptions<T extends ReturnType<NetworkCommands['renderSubscription']>>(objs: T[], query: Record<string, string | undefined>): T[] {
    // A repeated parameter (?status=a&status=b) arrives as a list: its values are OR-ed like a comma list's.
    const values = (v: string | string[] | undefined): string[] | null =>
      v === undefined || v === '' ? null : (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(','));
    const statuses = values(query.status) ?? ['all'];
    const resources = values(query.resource)?.map((r) => (r === 'hdd' ? 'dssd' : r)) ?? null;
    const objects = values(query.subscribed_object);
    return objs
      .filter((s) => statuses.includes('all') || statuses.includes(s.status) || (statuses.includes('notexpired') && s.status !== 'expired'))
      .filter((s) => !resources || resources.includes(s.resource))
      .filter((s) => !objects || objects.includes(s.subscribed_object ?? ''));
  }

  async loadSubscription(actor: Actor, id: string): Promise<Stored<SubscriptionDoc>> {
    await this.sweep(actor.user);
    const row = /^\d{1,15}$/.test(id)
      ? await this.store.db.selectFrom('subscriptions').select('uuid').where('seq', '=', Number(id)).executeTakeFirst()
      : undefined;
    const s = row ? await this.store.subscriptions.get((row as { uuid: string }).uuid) : undefined;
    if (!s || s.owner !== actor.user) throw errors.notFound('Subscription');
    return s;
  }

  /** Buys subscriptions; each ip/vlan one takes one address/VLAN from the operator's pool, all or nothing. */
  async createSubscriptions(actor: Actor, bodies: Record<string, unknown>[]) {
    const now = new Date();
    const requests = bodies.map((b) => readSubscriptionRequest(b, now));
    const total = requests.reduce((n, r) => n + (OBJECT_RESOURCES.includes(r.resource) ? r.amount : 1), 0);
    if (total > 500) throw errors.invalid('amount', 'At most 500 subscriptions per request');
    const made: Array<{ kind: string; uuid: string }> = [];
    const uuids = await this.store.transaction(async (trx) => {
      const out: string[] = [];
      for (const r of requests) {
        const objects = OBJECT_RESOURCES.includes(r.resource) ? r.amount : 1;
        for (let i = 0; i < objects; i++) {
          const object = r.resource === 'ip' ? await this.allocateIp(actor.user, trx) : r.resource === 'vlan' ? await this.allocateVlan(actor.user, trx) : null;
          const doc: SubscriptionDoc = {
            uuid: newUuid(),
            resource: r.resource,
            amount: String(objects === 1 && !object ? r.amount : 1),
            start_time: isoMicros(r.start),
            end_time: isoMicros(r.end).replace('.000000', ''),
            auto_renew: r.auto_renew,
            subscribed_object: object,
            price: '0',
            descendants: [],
          };
          await this.store.subscriptions.insert(actor.user, doc, '', trx);
          if (object) {
            const sub = (await this.store.subscriptions.get(doc.uuid, trx))!;
            const table = r.resource === 'ip' ? this.store.ips : this.store.vlans;
            const held = (await table.get(object, trx))!;
            await table.update({ ...held.doc, subscription: sub.seq } as any, {}, trx);
            made.push({ kind: r.resource === 'ip' ? 'ips' : 'vlans', uuid: object });
          }
          out.push(doc.uuid);
        }
      }
      return out;
    });
    for (const m of made) this.svc.publish(m.kind, m.uuid, actor.user, 'created');
    const subs = await this.store.subscriptions.getMany(uuids);
    for (const sub of subs) this.svc.publish('subscriptions', String(sub.seq), actor.user, 'created');
    return subs.map((s) => this.renderSubscription(s, now));
  }

  /** The lowest free address of the pool. A unique key makes a concurrent taker lose cleanly and try the next. */
  private async allocateIp(owner: string, trx: Db): Promise<string> {
    const taken = await this.store.ips.uuids(trx);
    const ip = await allocateAddress(this.ipPool, taken, (uuid) =>
      this.store.ips.insertIfFree(owner, { uuid, meta: {}, tags: [], subscription: null }, '', trx),
    );
    if (ip === null) throw errors.poolExhausted('public IP addresses', 'OPENSIGMA_IP_POOL');
    return ip;
  }

  private async allocateVlan(owner: string, trx: Db): Promise<string> {
    const taken = new Set(((await trx.selectFrom('vlans').select('slot').execute()) as Array<{ slot: number }>).map((r) => Number(r.slot)));
    for (let slot = 1; slot <= this.svc.config.vlanPool; slot++) {
      if (taken.has(slot)) continue;
      const doc: VlanDoc = { uuid: newUuid(), meta: {}, tags: [], subscription: null, slot };
      if (await this.store.vlans.insertIfFree(owner, doc, '', trx)) return doc.uuid;
    }
    throw errors.poolExhausted('VLANs', 'OPENSIGMA_VLAN_POOL');
  }

  /** The subscription with this id (its seq), if any. */
  private async bySeq(id: number, trx: Db = this.store.db): Promise<Stored<SubscriptionDoc> | undefined> {
    const row = await trx.selectFrom('subscriptions').select('uuid').where('seq', '=', id).executeTakeFirst();
    return row ? this.store.subscriptions.get((row as { uuid: string }).uuid, trx) : undefined;
  }

  /** The last link of the chain a subscription belongs to, from it onwards: what an extension continues. */
  private async lastLink(s: Stored<SubscriptionDoc>): Promise<Stored<SubscriptionDoc>> {
    const last = s.doc.descendants.at(-1);
    return (last !== undefined ? await this.bySeq(last) : undefined) ?? s;
  }

  /** Where ?do=extend would move the chain's end: by `period`, to `end_time`, or by the subscription's own length. */
  private extendedEnd(s: Stored<SubscriptionDoc>, from: Date, body: Record<string, unknown>): Date {
    if (this.renderSubscription(s).status === 'expired') throw errors.permission('An expired subscription cannot be extended; buy a new one');
    if (body.end_time !== undefined && body.end_time !== null) {
      const next = nextNoon(new Date(String(body.end_time)));
      if (Number.isNaN(next.getTime())) throw errors.invalid('end_time', 'end_time must be an ISO 8601 date and time');
      if (next <= from) throw errors.invalid('end_time', 'end_time must be after the current end of the subscription');
      return next;
    }
    if (body.period !== undefined && body.period !== null) return nextNoon(addPeriod(from, String(body.period)));
    return new Date(from.getTime() + (new Date(s.doc.end_time).getTime() - new Date(s.doc.start_time).getTime()));
  }

  /**
   * ?do=extend buys the next link of the subscription's chain: a subscription of the same resource, amount and
   * object from the chain's end to the new end (inactive until it starts), listed in the `descendants` of every
   * earlier link. Answers the new link.
   */
  async extend(actor: Actor, id: string, body: Record<string, unknown>) {
    const s = await this.loadSubscription(actor, id);
    const last = await this.lastLink(s);
    const from = new Date(last.doc.end_time);
    const end = this.extendedEnd(s, from, body);
    const rootId = s.doc.ancestor ?? s.seq;
    const doc: SubscriptionDoc = {
      uuid: newUuid(),
      resource: s.doc.resource,
      amount: s.doc.amount,
      start_time: last.doc.end_time,
      end_time: isoMicros(end).replace('.000000', ''),
      auto_renew: s.doc.auto_renew,
      subscribed_object: s.doc.subscribed_object,
      price: '0',
      descendants: [],
      ancestor: rootId,
    };
    const touched = await this.store.transaction(async (trx) => {
      await this.store.subscriptions.insert(actor.user, doc, '', trx);
      const made = (await this.store.subscriptions.get(doc.uuid, trx))!;
      const root = (await this.bySeq(rootId, trx))!;
      const chain = [root, ...(await Promise.all(root.doc.descendants.map((d) => this.bySeq(d, trx))))].filter((x): x is Stored<SubscriptionDoc> => !!x);
      for (const link of chain) await this.store.subscriptions.update({ ...link.doc, descendants: [...link.doc.descendants, made.seq] }, {}, trx);
      return chain.map((l) => l.seq);
    });
    const made = (await this.store.subscriptions.get(doc.uuid))!;
    this.svc.publish('subscriptions', String(made.seq), actor.user, 'created');
    for (const seq of touched) this.svc.publish('subscriptions', String(seq), actor.user, 'updated');
    return this.renderSubscription(made);
  }

  /** GET /groupedsubscriptions/: each chain's first subscription, its `descendants` as full objects. */
  async listGrouped(actor: Actor, query: Record<string, string | undefined>, q: { limit: number; offset: number }) {
    await this.sweep(actor.user);
    const { items } = await this.store.subscriptions.list({
      owner: actor.user,
      conditions: [],
      tags: [],
      tagNames: [],
      limit: 0,
      offset: 0,
      orderBy: { column: 'seq', desc: true },
    });
    const bySeq = new Map(items.map((s) => [s.seq, s]));
    const roots = this.filterSubscriptions(
      items.filter((s) => s.doc.ancestor === undefined).map((s) => this.renderSubscription(s)),
      query,
    );
    const objects = roots.map((r) => ({
      ...r,
      descendants: bySeq
        .get(Number(r.id))!
        .doc.descendants.map((d) => bySeq.get(d))
        .filter((d): d is Stored<SubscriptionDoc> => !!d)
        .map((d) => this.renderSubscription(d)),
    }));
    return { total: objects.length, items: page(objects, q) };
  }

  /** A price quote for what create would buy (prices are 0): nothing is bought. */
  quote(bodies: Record<string, unknown>[]) {
    const now = new Date();
    return bodies.map((b) => {
      const r = readSubscriptionRequest(b, now);
      return this.quoteOf(r.resource, String(r.amount), r.start, r.end);
    });
  }

  /** A price quote for extending a subscription. */
  async quoteExtension(actor: Actor, id: string, body: Record<string, unknown>) {
    const s = await this.loadSubscription(actor, id);
    const from = new Date((await this.lastLink(s)).doc.end_time);
    return this.quoteOf(s.doc.resource, s.doc.amount, from, this.extendedEnd(s, from, body));
  }

  private quoteOf(resource: string, amount: string, start: Date, end: Date) {
    return {
      amount,
      discount_amount: '0',
      discount_percent: '0',
      discounts: {},
      end_time: isoMicros(end).replace('.000000', ''),
      free_tier: false,
      period: timedelta(end.getTime() - start.getTime()),
      price: '0',
      resource,
      start_time: isoMicros(start).replace('.000000', ''),
      was_billed: false,
    };
  }

  /** ?do=auto_renew: sets it from the body, or toggles it. */
  async autoRenew(actor: Actor, id: string, body: Record<string, unknown>) {
    const s = await this.loadSubscription(actor, id);
    const doc = structuredClone(s.doc);
    if (body.auto_renew === undefined || body.auto_renew === null) doc.auto_renew = !doc.auto_renew;
    else if (typeof body.auto_renew === 'boolean') doc.auto_renew = body.auto_renew;
    else throw errors.invalid('auto_renew', 'auto_renew must be true or false');
    await this.store.subscriptions.update(doc);
    this.svc.publish('subscriptions', id, actor.user, 'updated');
    return this.renderSubscription((await this.store.subscriptions.get(doc.uuid))!);
  }

  /**
   * Runs an account's subscriptions to now: an ended link of a chain expires and hands its IP or VLAN to the next
   * link; an ended last link that auto-renews is renewed for its own length; the others expire, and their IP or VLAN
   * goes back to the pool once no server uses it any more.
   */
  async sweep(user: string): Promise<void> {
    const now = new Date();
    const { items } = await this.store.subscriptions.list({ owner: user, conditions: [], tags: [], tagNames: [], limit: 0, offset: 0 });
    // A chain that ended in an earlier sweep needs a release only while the account still holds its object: one
    // query for all of them, rather than a transaction for each expired subscription in the account's history.
    const stillHeld = await this.heldBy(
      user,
      items.filter((s) => s.status === 'expired'),
    );
    for (const s of items) {
      if (s.status === 'expired' && !stillHeld.has(s.doc.subscribed_object ?? '')) continue;
      const end = new Date(s.doc.end_time);
      if (s.status !== 'expired' && end > now) continue;
      if (s.status !== 'expired' && s.doc.auto_renew && s.doc.descendants.length === 0) {
        const doc = structuredClone(s.doc);
        const length = end.getTime() - new Date(doc.start_time).getTime();
        let next = end;
        while (next <= now) next = new Date(next.getTime() + Math.max(length, 86_400_000));
        doc.end_time = isoMicros(next).replace('.000000', '');
        if (await this.store.subscriptions.update(doc, { expectedVersion: s.version })) this.svc.publish('subscriptions', String(s.seq), user, 'updated');
        continue;
      }
      if (s.status !== 'expired' && (await this.store.subscriptions.transition(s.uuid, [s.status], 'expired')))
        this.svc.publish('subscriptions', String(s.seq), user, 'updated');
      const heir = items.find((o) => s.doc.descendants.includes(o.seq) && o.status !== 'expired' && new Date(o.doc.end_time) > now);
      if (heir) await this.handOver(s.doc, heir.seq);
      else if (
        !items.some(
          (o) =>
            o !== s &&
            o.status !== 'expired' &&
            new Date(o.doc.end_time) > now &&
            o.doc.subscribed_object !== null &&
            o.doc.subscribed_object === s.doc.subscribed_object,
        )
      ) {
        const root = s.doc.ancestor ?? s.seq;
        await this.release(s.doc, new Set([root, ...(items.find((o) => o.seq === root)?.doc.descendants ?? s.doc.descendants)]));
      }
    }
  }

  /** Which of the IPs and VLANs of these subscriptions the account still holds. */
  private async heldBy(user: string, subs: Array<Stored<SubscriptionDoc>>): Promise<Set<string>> {
    const held = new Set<string>();
    for (const [resource, table] of [
      ['ip', 'ips'],
      ['vlan', 'vlans'],
    ] as const) {
      const objects = [...new Set(subs.filter((s) => s.doc.resource === resource && s.doc.subscribed_object).map((s) => s.doc.subscribed_object!))];
      for (let i = 0; i < objects.length; i += 500) {
        const rows = await this.store.db
          .selectFrom(table)
          .select('uuid')
          .where('owner', '=', user)
          .where('uuid', 'in', objects.slice(i, i + 500))
          .execute();
        for (const r of rows as Array<{ uuid: string }>) held.add(r.uuid);
      }
    }
    return held;
  }

  /** The IP or VLAN of an ended link now belongs to the next link of its chain. */
  private async handOver(sub: SubscriptionDoc, heir: number): Promise<void> {
    const obj = sub.subscribed_object;
    if (!obj || !OBJECT_RESOURCES.includes(sub.resource)) return;
    const table = sub.resource === 'ip' ? this.store.ips : this.store.vlans;
    const held = await table.get(obj);
    // Only over the version read: an edit of the object meanwhile (its meta, tags) is not overwritten; the next sweep
    // hands it over then.
    if (held && ((held.doc as { subscription: number | null }).subscription !== heir || held.status === ENDED))
      await table.update({ ...held.doc, subscription: heir } as any, { status: '', expectedVersion: held.version });
  }

  /**
   * Every account's ended subscriptions, as the background sweep does it (`OPENSIGMA_SUBSCRIPTION_SWEEP_MS`): the
   * accounts with a subscription still running, and those holding an IP or VLAN whose chain ended while a server used
   * it, so it is freed once the server lets go even if the account never calls again.
   */
  async sweepAll(): Promise<void> {
    const db = this.store.db;
    const rows = (await db
      .selectFrom('subscriptions')
      .select('owner')
      .where('status', '!=', 'expired')
      .union(db.selectFrom('ips').select('owner').where('status', '=', ENDED))
      .union(db.selectFrom('vlans').select('owner').where('status', '=', ENDED))
      .execute()) as Array<{ owner: string }>;
    for (const r of rows) await this.sweep(r.owner);
  }

  /**
   * Gives an ended chain's IP or VLAN back to the pool once no server uses it. Every API node sweeps, so sweeps race:
   * the check and the delete are one transaction, and only the sweep whose delete removed the row announces it (one
   * event, one audit entry). An object held by another chain (sold again since) is not this chain's to free. The row
   * is locked before the check, as a server write attaching it does, so a server never keeps a freed address. One
   * still in use is marked `ended`: no server may newly attach it, and sweepAll visits its account until it is freed.
   */
  private async release(sub: SubscriptionDoc, chain: Set<number>): Promise<void> {
    const obj = sub.subscribed_object;
    if (!obj || !OBJECT_RESOURCES.includes(sub.resource)) return;
    const kind = sub.resource === 'ip' ? 'ips' : 'vlans';
    const table = sub.resource === 'ip' ? this.store.ips : this.store.vlans;
    const freed = await this.store.transaction(async (trx) => {
      if (!(await this.lockRow(kind, obj, trx))) return null;
      const held = await table.get(obj, trx);
      if (!held || held.doc.subscription === null || !chain.has(held.doc.subscription)) return null;
      const users = kind === 'ips' ? await this.serversUsingIp(obj, trx) : await this.serversInVlan(obj, trx);
      if (users.length) {
        // Held over: kept for the server, marked so that the background sweep comes back for it.
        if (held.status !== ENDED) await table.setColumns(obj, { status: ENDED }, trx);
        return null;
      }
      if (!(await table.delete(obj, trx))) return null;
      return { owner: held.owner };
    });
    if (freed) this.svc.publish(kind, obj, freed.owner, 'deleted');
  }
}
