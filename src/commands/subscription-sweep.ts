import type { Logger } from 'pino';
import type { Services } from '../services.ts';
import { ENDED, endTimeText, OBJECT_RESOURCES, renewedEnd } from '../domain/subscription-terms.ts';
import type { Stored } from '../store/documents.ts';
import type { IpDoc, SubscriptionDoc, VlanDoc } from '../store/index.ts';

/**
 * Runs ended subscriptions to their end in the background: they expire or renew, and their IPs and VLANs go to the
 * next link of their chain or back to the pool. Reads never wait for it: they show each subscription, IP and VLAN
 * as it stands at the time of the read (`termAt`, `chainsRunning`), and the sweep makes the rows agree afterwards.
 */
export class SubscriptionSweep {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  /**
   * Sweeps every account every `periodMs` (`OPENSIGMA_SUBSCRIPTION_SWEEP_MS`), one pass at a time, until the
   * returned stop is called; stop waits for a pass under way.
   */
  start(periodMs: number, log: Logger): () => Promise<void> {
    let running: Promise<void> | null = null;
    const timer = setInterval(
      () => {
        if (running) return; // a slow pass is still going
        running = this.sweepAll()
          .catch((err) => log.warn({ err }, 'subscription sweep'))
          .finally(() => (running = null));
      },
      Math.max(100, periodMs),
    );
    timer.unref();
    return async () => {
      clearInterval(timer);
      await running;
    };
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
        doc.end_time = endTimeText(renewedEnd(s, now)!);
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
    const objects = (resource: string) => [
      ...new Set(subs.filter((s) => s.doc.resource === resource && s.doc.subscribed_object).map((s) => s.doc.subscribed_object!)),
    ];
    return new Set([...(await this.store.ips.heldBy(user, objects('ip'))), ...(await this.store.vlans.heldBy(user, objects('vlan')))]);
  }

  /** The IP or VLAN of an ended link now belongs to the next link of its chain. */
  private async handOver(sub: SubscriptionDoc, heir: number): Promise<void> {
    const obj = sub.subscribed_object;
    if (!obj || !OBJECT_RESOURCES.includes(sub.resource)) return;
    // Only over the version read: an edit of the object meanwhile (its meta, tags) is not overwritten; the next sweep
    // hands it over then.
    const handOver = async <T extends IpDoc | VlanDoc>(held: Stored<T> | undefined, update: (doc: T, version: number) => Promise<boolean>) => {
      if (held && (held.doc.subscription !== heir || held.status === ENDED)) await update({ ...held.doc, subscription: heir }, held.version);
    };
    if (sub.resource === 'ip') await handOver(await this.store.ips.get(obj), (doc, v) => this.store.ips.update(doc, { status: '', expectedVersion: v }));
    else await handOver(await this.store.vlans.get(obj), (doc, v) => this.store.vlans.update(doc, { status: '', expectedVersion: v }));
  }

  /**
   * Every account's ended subscriptions, as the background sweep does it (`OPENSIGMA_SUBSCRIPTION_SWEEP_MS`): the
   * accounts with a subscription still running, and those holding an IP or VLAN whose chain ended while a server used
   * it, so it is freed once the server lets go even if the account never calls again.
   */
  async sweepAll(): Promise<void> {
    for (const owner of await this.store.subscriptions.ownersToSweep(ENDED)) await this.sweep(owner);
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
      if (!(await table.lock([obj], trx)).length) return null;
      const held = await table.get(obj, trx);
      if (!held || held.doc.subscription === null || !chain.has(held.doc.subscription)) return null;
      const users = await this.store.servers.referencing(kind === 'ips' ? 'ip' : 'vlan', obj, kind === 'ips' ? ['static'] : undefined, trx);
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
