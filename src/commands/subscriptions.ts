import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid, isoMicros } from '../domain/ids.ts';
import { API } from '../domain/refs.ts';
import { addPeriod, nextNoon, OBJECT_RESOURCES, readSubscriptionRequest, termAt, timedelta } from '../domain/subscription-terms.ts';
import type { DocumentTable, Stored } from '../store/documents.ts';
import type { SubscriptionDoc } from '../store/index.ts';
import { IpCommands } from './ips.ts';
import { page, subscriptionRef } from './network-objects.ts';
import type { Actor } from './servers.ts';
import { SubscriptionSweep } from './subscription-sweep.ts';
import { VlanCommands } from './vlans.ts';

/**
 * /subscriptions/: what an account buys of the operator's resources. An ip or vlan subscription hands out one
 * address or VLAN from the pool, held for as long as the subscription's chain of extensions runs.
 */
export class SubscriptionCommands {
  private readonly sweeper: SubscriptionSweep;

  constructor(
    private readonly svc: Services,
    private readonly ips = new IpCommands(svc),
    private readonly vlans = new VlanCommands(svc),
  ) {
    this.sweeper = new SubscriptionSweep(svc);
  }

  private get store() {
    return this.svc.store;
  }

  /** As the subscription stands at `now`, whether or not the background sweep has expired or renewed it yet. */
  renderSubscription(stored: Stored<SubscriptionDoc>, now = new Date()) {
    const s = termAt(stored, now);
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

  /** Every subscription of the account, the newest first, as both lists show them. */
  private async newestFirst(owner: string): Promise<Array<Stored<SubscriptionDoc>>> {
    const q = { owner, conditions: [], tags: [], tagNames: [], limit: 0, offset: 0 };
    return (await this.store.subscriptions.list({ ...q, orderBy: { column: 'seq', desc: true } })).items;
  }

  async listSubscriptions(actor: Actor, query: Record<string, string | undefined>, q: { limit: number; offset: number }) {
    const items = await this.newestFirst(actor.user);
    const objects = this.filterSubscriptions(
      items.map((s) => this.renderSubscription(s)),
      query,
    );
    return { total: objects.length, items: page(objects, q) };
  }

  /** ?status= (default all), ?resource= (hdd is dssd), ?subscribed_object=, each a comma list. */
  private filterSubscriptions<T extends ReturnType<SubscriptionCommands['renderSubscription']>>(objs: T[], query: Record<string, string | undefined>): T[] {
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
    const s = /^\d{1,15}$/.test(id) ? await this.store.subscriptions.bySeq(Number(id)) : undefined;
    if (!s || s.owner !== actor.user) throw errors.notFound('Subscription');
    return s;
  }

  /**
   * The subscription for a change to it. One that ended since the background sweep last came by is swept first
   * (with the rest of its account, as the sweep does it), so the change starts from what the account holds now.
   */
  private async settled(actor: Actor, id: string): Promise<Stored<SubscriptionDoc>> {
    const s = await this.loadSubscription(actor, id);
    if (termAt(s, new Date()) === s) return s;
    await this.sweeper.sweep(actor.user);
    return this.loadSubscription(actor, id);
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
          const object =
            r.resource === 'ip' ? await this.ips.allocate(actor.user, trx) : r.resource === 'vlan' ? await this.vlans.allocate(actor.user, trx) : null;
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
            // Generic over the two tables: a call on their union would need a document that is both an IP and a VLAN.
            const subscribe = async <T extends { uuid: string; subscription: number | null }>(table: DocumentTable<T>) => {
              const held = (await table.get(object, trx))!;
              await table.update({ ...held.doc, subscription: sub.seq }, {}, trx);
            };
            await (r.resource === 'ip' ? subscribe(this.store.ips) : subscribe(this.store.vlans));
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

  /** The last link of the chain a subscription belongs to, from it onwards: what an extension continues. */
  private async lastLink(s: Stored<SubscriptionDoc>): Promise<Stored<SubscriptionDoc>> {
    const last = s.doc.descendants.at(-1);
    return (last !== undefined ? await this.store.subscriptions.bySeq(last) : undefined) ?? s;
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
    const s = await this.settled(actor, id);
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
      const root = (await this.store.subscriptions.bySeq(rootId, trx))!;
      const chain = [root, ...(await Promise.all(root.doc.descendants.map((d) => this.store.subscriptions.bySeq(d, trx))))].filter(
        (x): x is Stored<SubscriptionDoc> => !!x,
      );
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
    const items = await this.newestFirst(actor.user);
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
    // A quote changes nothing: it prices the chain as it stands now, renewed or ended, swept or not.
    const now = new Date();
    const s = termAt(await this.loadSubscription(actor, id), now);
    const from = new Date(termAt(await this.lastLink(s), now).doc.end_time);
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
    const s = await this.settled(actor, id);
    const doc = structuredClone(s.doc);
    if (body.auto_renew === undefined || body.auto_renew === null) doc.auto_renew = !doc.auto_renew;
    else if (typeof body.auto_renew === 'boolean') doc.auto_renew = body.auto_renew;
    else throw errors.invalid('auto_renew', 'auto_renew must be true or false');
    await this.store.subscriptions.update(doc);
    this.svc.publish('subscriptions', id, actor.user, 'updated');
    return this.renderSubscription((await this.store.subscriptions.get(doc.uuid))!);
  }
}
