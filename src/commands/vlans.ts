import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid } from '../domain/ids.ts';
import { withoutTags } from '../domain/input.ts';
import { ownerRef, ref } from '../domain/refs.ts';
import type { ListQuery, Stored } from '../store/documents.ts';
import type { VlanDoc } from '../store/index.ts';
import type { Db } from '../store/schema.ts';
import { applyEditable, chainsRunning, page, seenBy, subscriptionRef } from './network-objects.ts';
import type { Actor } from './servers.ts';

/** /vlans/: the private networks an account holds for as long as its subscription runs; its servers join them from their NICs. */
export class VlanCommands {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  private serversInVlan(vlan: string): Promise<string[]> {
    return this.store.servers.referencing('vlan', vlan);
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
      servers: (await seenBy(this.svc, actor, await this.serversInVlan(v.uuid))).map((s) => ref('servers', s)),
      subscription: subscriptionRef(v.doc.subscription),
      tags: deco.tags ?? v.doc.tags.map((t) => ref('tags', t)),
      uuid: v.uuid,
    };
  }

  /** The VLANs among `vlans` the account still holds: their subscription runs, or a server is still in them. */
  private async held(vlans: Array<Stored<VlanDoc>>): Promise<Array<Stored<VlanDoc>>> {
    const running = await chainsRunning(this.store, vlans, new Date());
    const out: Array<Stored<VlanDoc>> = [];
    for (const v of vlans) if (running.has(v.uuid) || (await this.serversInVlan(v.uuid)).length > 0) out.push(v);
    return out;
  }

  /** The VLAN rendered for the actor, or null when they may not see it (notifications). */
  async renderVlanById(actor: Actor, uuid: string) {
    const v = await this.store.vlans.get(uuid);
    return v && (await this.svc.access.canSee(actor, 'vlans', v)) && (await this.held([v])).length ? this.renderVlan(actor, v) : null;
  }

  /** Paged after the VLANs the account no longer holds are left out, so the total counts what the pages show. */
  async listVlans(actor: Actor, q: ListQuery) {
    const { items } = await this.store.vlans.list({ ...q, limit: 0, offset: 0, ...(await this.svc.access.listScope(actor, 'vlans')) });
    const held = await this.held(items);
    return { total: held.length, items: page(held, q) };
  }

  async loadVlan(actor: Actor, uuid: string): Promise<Stored<VlanDoc>> {
    const v = await this.store.vlans.get(uuid);
    if (!v || !(await this.svc.access.canSee(actor, 'vlans', v)) || !(await this.held([v])).length) throw errors.notFound('VLAN');
    return v;
  }

  async updateVlan(actor: Actor, uuid: string, body: Record<string, unknown>) {
    const cur = await this.loadVlan(actor, uuid);
    if (!(await this.svc.access.canEdit(actor, 'vlans', cur))) throw errors.permission('You may not edit this VLAN');
    const doc = structuredClone(cur.doc);
    await applyEditable(this.svc, actor, doc, cur.owner === actor.user ? body : withoutTags(body));
    await this.store.transaction(async (trx) => {
      await this.store.vlans.update(doc, {}, trx);
      await this.store.vlans.setTags(doc.uuid, doc.tags, trx);
    });
    this.svc.publish('vlans', uuid, cur.owner, 'updated', actor);
    return this.renderVlan(actor, (await this.store.vlans.get(uuid))!);
  }

  /** The lowest free slot of the pool; a unique slot makes a concurrent taker lose cleanly and try the next. */
  async allocate(owner: string, trx: Db): Promise<string> {
    const taken = await this.store.vlans.takenSlots(trx);
    for (let slot = 1; slot <= this.svc.config.vlanPool; slot++) {
      if (taken.has(slot)) continue;
      const doc: VlanDoc = { uuid: newUuid(), meta: {}, tags: [], subscription: null, slot };
      if (await this.store.vlans.insertIfFree(owner, doc, '', trx)) return doc.uuid;
    }
    throw errors.poolExhausted('VLANs', 'OPENSIGMA_VLAN_POOL');
  }
}
