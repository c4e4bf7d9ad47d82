import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid } from '../domain/ids.ts';
import { readMeta, readString, withoutTags } from '../domain/input.ts';
import { ownerRef, readRefList, ref } from '../domain/refs.ts';
import { readRules } from '../domain/firewall.ts';
import type { ServerDef } from '../domain/server-definition.ts';
import type { ListQuery, Stored } from '../store/documents.ts';
import type { FwPolicyDoc, Store } from '../store/index.ts';
import type { Actor } from './servers.ts';
import type { Db } from '../store/schema.ts';

const KIND = 'fwpolicies';
const POLICY_POINT = 'nics.firewall_policy';

export { dropNicPolicies, syncNicPolicies } from '../store/fwpolicies.ts';

/**
 * The policy of each NIC of a server that has one, by MAC: what a driver enforcing policies asks (with `decide` from
 * domain/firewall.ts), in two queries whatever the number of NICs.
 */
export function nicPolicies(store: Store, serverUuid: string, trx?: Db): Promise<Map<string, FwPolicyDoc>> {
  return store.nicPolicies(serverUuid, trx);
}

/**
 * Firewall policies (`/fwpolicies/`): ordered accept/drop rules an account puts on the public NICs of its servers.
 * Shared like IPs and VLANs: LIST shows a policy, EDIT changes its name, meta and rules, ATTACH puts it on a NIC.
 */
export class FirewallCommands {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  async load(actor: Actor, uuid: string, trx?: Db): Promise<Stored<FwPolicyDoc>> {
    const p = await this.store.fwpolicies.get(uuid, trx);
    if (!p || (p.owner !== actor.user && !(await this.svc.access.canSee(actor, KIND, p, trx)))) throw errors.notFound('Firewall policy');
    return p;
  }

  async list(actor: Actor, q: ListQuery) {
    return this.store.fwpolicies.list({ ...q, ...(await this.svc.access.listScope(actor, KIND)) });
  }

  /**
   * Servers whose NICs use each policy, from the join table in one query. The owner sees every one; a grantee only
   * his own (another account's servers are none of his business).
   */
  async serversOf(actor: Actor, policies: Array<Stored<FwPolicyDoc>>, trx?: Db): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (!policies.length) return out;
    const rows = await this.store.fwpolicies.uses(
      policies.map((p) => p.uuid),
      trx,
    );
    const owners = new Map(policies.map((p) => [p.uuid, p.owner]));
    for (const r of rows) {
      if (owners.get(r.policy_uuid) !== actor.user && r.owner !== actor.user) continue;
      const list = out.get(r.policy_uuid) ?? [];
      if (!list.includes(r.server_uuid)) list.push(r.server_uuid);
      out.set(r.policy_uuid, list);
    }
    return out;
  }

  /** Full wire objects of many policies (detail lists), decorated in a constant number of queries. */
  async renderMany(actor: Actor, list: Array<Stored<FwPolicyDoc>>) {
    const deco = await this.svc.decorationsMany(actor, KIND, list);
    const servers = await this.serversOf(actor, list);
    return list.map((p) => {
      const d = deco.get(p.uuid) ?? {};
      return {
        grantees: d.grantees ?? [],
        meta: p.doc.meta,
        name: p.doc.name,
        owner: ownerRef(p.owner),
        permissions: d.permissions ?? [],
        resource_uri: ref(KIND, p.uuid).resource_uri,
        rules: p.doc.rules,
        servers: (servers.get(p.uuid) ?? []).map((s) => ref('servers', s)),
        tags: d.tags ?? p.doc.tags.map((t) => ref('tags', t)),
        uuid: p.uuid,
      };
    });
  }

  async render(actor: Actor, p: Stored<FwPolicyDoc>) {
    return (await this.renderMany(actor, [p]))[0]!;
  }

  /** The short list item: what the transcripts show for GET /fwpolicies/. */
  renderShort(p: Stored<FwPolicyDoc>) {
    return { meta: p.doc.meta, name: p.doc.name, owner: ownerRef(p.owner), resource_uri: ref(KIND, p.uuid).resource_uri, uuid: p.uuid };
  }

  /** name, meta, rules and tags; read-only fields (owner, servers, uuid...) are ignored as the API ignores them. */
  private apply(base: FwPolicyDoc, body: Record<string, unknown>): FwPolicyDoc {
    const doc = structuredClone(base);
    if (body.name !== undefined) doc.name = body.name === null ? null : readString(body.name, 'name', { max: 1024 });
    if (body.meta !== undefined) doc.meta = readMeta(body.meta, 'meta');
    if (body.rules !== undefined) doc.rules = readRules(body.rules, 'rules');
    if (body.tags !== undefined) doc.tags = readRefList(body.tags, 'tags');
    return doc;
  }

  private async checkTags(actor: Actor, tags: string[], trx: Db): Promise<void> {
    const found = await this.store.tags.getMany(tags, trx);
    for (const t of tags) if (!found.some((x) => x.uuid === t && x.owner === actor.user)) throw errors.invalid('tags', `Tag ${t} does not exist`);
  }

  async create(actor: Actor, bodies: Record<string, unknown>[]): Promise<Array<Stored<FwPolicyDoc>>> {
    // Every body is read before anything is written: one bad rule in a bulk create creates nothing.
    const docs = bodies.map((b) => this.apply({ uuid: newUuid(), name: null, meta: {}, rules: [], tags: [] }, b));
    const made = await this.store.transaction(async (trx) => {
      for (const doc of docs) {
        await this.checkTags(actor, doc.tags, trx);
        await this.store.fwpolicies.insert(actor.user, doc, '', trx);
        await this.store.fwpolicies.setTags(doc.uuid, doc.tags, trx);
      }
      return this.store.fwpolicies.getMany(
        docs.map((d) => d.uuid),
        trx,
      );
    });
    const order = new Map(docs.map((d, i) => [d.uuid, i]));
    made.sort((a, b) => order.get(a.uuid)! - order.get(b.uuid)!);
    for (const p of made) this.svc.publish(KIND, p.uuid, actor.user, 'created');
    return made;
  }

  async update(actor: Actor, uuid: string, body: Record<string, unknown>): Promise<Stored<FwPolicyDoc>> {
    const owner = await this.store.transaction(async (trx) => {
      const p = await this.load(actor, uuid, trx);
      const mine = p.owner === actor.user;
      if (!mine && !(await this.svc.access.canEdit(actor, KIND, p, trx))) throw errors.permission('You may not edit this firewall policy');
      // A grantee sees no tags and cannot set them: the owner's tags (which may be what shares it) stay.
      const doc = this.apply(p.doc, mine ? body : withoutTags(body));
      if (mine)
        await this.checkTags(
          actor,
          doc.tags.filter((t) => !p.doc.tags.includes(t)),
          trx,
        );
      if (!(await this.store.fwpolicies.update(doc, { expectedVersion: p.version }, trx))) throw errors.concurrency();
      await this.store.fwpolicies.setTags(uuid, doc.tags, trx);
      return p.owner;
    });
    this.svc.publish(KIND, uuid, owner, 'updated', actor);
    return (await this.store.fwpolicies.get(uuid))!;
  }

  /**
   * Only the owner deletes, and only while every server using the policy is stopped (as CloudSigma had it); those
   * servers' NICs are left without a policy, in the same transaction. Several at once: all of them, or none.
   */
  async delete(actor: Actor, uuids: string[]): Promise<void> {
    const gone = [...new Set(uuids)];
    const detached = await this.store.transaction(async (trx) => {
      for (const uuid of gone) {
        const p = await this.load(actor, uuid, trx);
        if (p.owner !== actor.user) throw errors.permission('Only the owner may delete a firewall policy');
      }
      // Locked first, as attaching one locks it: an attach either went first (and is seen here) or finds it gone.
      await this.store.fwpolicies.lock(gone, trx);
      const servers = await this.store.servers.getMany(await this.store.fwpolicies.serversUsing(gone, trx), trx);
      const busy = servers.filter((s) => s.status !== 'stopped');
      if (busy.length)
        throw errors.permission(
          `Cannot delete a firewall policy used by servers that are not stopped (${busy.map((s) => s.uuid).join(', ')}); stop them or detach the policy first`,
        );
      const deleted = new Set(gone);
      for (const s of servers) {
        const doc = structuredClone(s.doc);
        for (const n of doc.nics) if (n.firewall_policy && deleted.has(n.firewall_policy)) n.firewall_policy = null;
        // Only a stopped server loses it: one started meanwhile keeps its policy and the delete is refused.
        if (!(await this.store.servers.update(doc, { expectedVersion: s.version, expectedStatus: ['stopped'] }, trx))) throw errors.concurrency();
      }
      await this.store.fwpolicies.detachAll(gone, trx);
      for (const uuid of gone) await this.store.fwpolicies.delete(uuid, trx);
      return servers.map((s) => ({ uuid: s.uuid, owner: s.owner }));
    });
    for (const s of detached) this.svc.publish('servers', s.uuid, s.owner, 'updated', actor);
    for (const uuid of gone) this.svc.publish(KIND, uuid, actor.user, 'deleted');
  }

  /**
   * A server definition's policies must exist and be the actor's own or shared with ATTACH. Only policies new to the
   * definition are checked, so an edit never fails over what the server already had.
   */
  readonly checkNics = async (actor: Actor, def: ServerDef, previous: ServerDef | null, trx: Db): Promise<void> => {
    const had = new Set(previous?.nics.map((n) => n.firewall_policy).filter(Boolean) ?? []);
    const checked = new Set<string>();
    for (const n of def.nics) {
      const uuid = n.firewall_policy;
      if (!uuid || had.has(uuid) || checked.has(uuid)) continue;
      checked.add(uuid);
      // The row is locked before it is read, as deleting it locks it: the two take turns.
      const found = (await this.store.fwpolicies.lock([uuid], trx)).length > 0;
      const p = found ? await this.store.fwpolicies.get(uuid, trx) : undefined;
      if (!p || (p.owner !== actor.user && !(await this.svc.access.canUse(actor, KIND, p, trx))))
        throw errors.invalid(POLICY_POINT, `Firewall policy ${uuid} does not exist`);
    }
  };
}
