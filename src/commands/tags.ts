import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid } from '../domain/ids.ts';
import { readMeta, readString } from '../domain/input.ts';
import { ownerRef, readRef, ref } from '../domain/refs.ts';
import type { DocumentTable, Stored } from '../store/documents.ts';
import type { TagDoc } from '../store/index.ts';
import type { Actor } from './servers.ts';
import type { Db } from '../store/schema.ts';

/** Resource kinds that carry tags, in the order an untyped id is looked up. */
export const TAGGABLE = ['servers', 'drives', 'ips', 'vlans', 'snapshots', 'fwpolicies', 'remotesnapshots'] as const;
export type TaggableKind = (typeof TAGGABLE)[number];
type Tagged = DocumentTable<{ uuid: string; tags: string[] }>;

export interface Member {
  kind: TaggableKind;
  uuid: string;
}

/**
 * Tags and their membership. Membership lives in resource_tags (what tag= filters read) and in each resource's own
 * `tags` field (what its GET shows); every change here writes both, in one transaction.
 */
export class TagCommands {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  table(kind: TaggableKind): Tagged {
    return this.store[kind] as unknown as Tagged;
  }

  async load(actor: Actor, uuid: string, trx?: Db): Promise<Stored<TagDoc>> {
    const t = await this.store.tags.get(uuid, trx);
    if (!t || t.owner !== actor.user) throw errors.notFound('Tag');
    return t;
  }

  async members(tagUuid: string, trx?: Db): Promise<Array<Member & { owner: string | null }>> {
    const rows = await this.store.tags.members(tagUuid, trx);
    const out: Array<Member & { owner: string | null }> = [];
    for (const kind of TAGGABLE) {
      const uuids = rows.filter((r) => r.resource_type === kind).map((r) => r.resource_uuid);
      for (const o of await this.table(kind).getMany(uuids, trx)) out.push({ kind, uuid: o.uuid, owner: o.owner });
    }
    return out;
  }

  async render(t: Stored<TagDoc>) {
    return {
      meta: t.doc.meta,
      name: t.doc.name,
      owner: ownerRef(t.owner),
      resource_uri: ref('tags', t.uuid).resource_uri,
      resources: (await this.members(t.uuid)).map((m) => ({ owner: ownerRef(m.owner), res_type: m.kind, ...ref(m.kind, m.uuid) })),
      uuid: t.uuid,
    };
  }

  /** `resources`: ids (or {uuid} objects, or URIs) of the actor's servers, drives, IPs, VLANs, snapshots or firewall policies. */
  async readResources(actor: Actor, value: unknown, trx: Db): Promise<Member[]> {
    if (value === null) return [];
    if (!Array.isArray(value)) throw errors.invalid('resources', 'resources must be a list');
    const out: Member[] = [];
    for (const v of value) {
      const id = readRef(v, 'resources', { kind: 'any' });
      const hinted =
        typeof v === 'object' && v
          ? String((v as { res_type?: unknown }).res_type ?? (v as { resource_uri?: unknown }).resource_uri ?? '')
          : typeof v === 'string'
            ? v
            : '';
      let found: Member | undefined;
      for (const kind of TAGGABLE) {
        if (hinted.includes('/api/2.0/') && !hinted.includes(`/${kind}/`) && hinted !== kind) continue;
        const o = await this.table(kind).get(id, trx);
        if (o && o.owner === actor.user) {
          found = { kind, uuid: o.uuid };
          break;
        }
      }
      if (!found) throw errors.invalid('resources', `Resource ${id} does not exist`);
      if (!out.some((m) => m.uuid === found!.uuid && m.kind === found!.kind)) out.push(found);
    }
    return out;
  }

  /** Adds or removes one tag on one resource, in both places membership is kept. */
  private async retag(m: Member, tag: string, on: boolean, trx: Db): Promise<void> {
    const table = this.table(m.kind);
    const o = await table.get(m.uuid, trx);
    if (!o) return;
    const tags = on ? [...new Set([...(o.doc.tags ?? []), tag])] : (o.doc.tags ?? []).filter((t) => t !== tag);
    await table.update({ ...o.doc, tags }, {}, trx);
    await table.setTags(m.uuid, tags, trx);
  }

  /** Replaces the resources carrying a tag. */
  async setMembers(tag: string, wanted: Member[], trx: Db): Promise<Member[]> {
    const now = await this.members(tag, trx);
    const key = (m: Member) => `${m.kind}/${m.uuid}`;
    const want = new Set(wanted.map(key));
    const have = new Set(now.map(key));
    const changed: Member[] = [];
    for (const m of now)
      if (!want.has(key(m))) {
        changed.push(m);
        await this.retag(m, tag, false, trx);
      }
    for (const m of wanted)
      if (!have.has(key(m))) {
        changed.push(m);
        await this.retag(m, tag, true, trx);
      }
    return changed;
  }

  private announce(owner: string, changed: Member[]): void {
    for (const m of changed) this.svc.publish(m.kind, m.uuid, owner, 'updated');
  }

  async create(actor: Actor, bodies: Record<string, unknown>[]): Promise<Stored<TagDoc>[]> {
    const docs: TagDoc[] = bodies.map((b) => {
      if (b.name === undefined || b.name === null) throw errors.required('name');
      return { uuid: newUuid(), name: readString(b.name, 'name', { nonEmpty: true, max: 1024 }), meta: b.meta === undefined ? {} : readMeta(b.meta, 'meta') };
    });
    const changed: Member[] = [];
    const made = await this.store.transaction(async (trx) => {
      for (const [i, d] of docs.entries()) {
        const members = bodies[i]!.resources === undefined ? [] : await this.readResources(actor, bodies[i]!.resources, trx);
        await this.store.tags.insert(actor.user, d, '', trx);
        changed.push(...(await this.setMembers(d.uuid, members, trx)));
      }
      return this.store.tags.getMany(
        docs.map((d) => d.uuid),
        trx,
      );
    });
    for (const t of made) this.svc.publish('tags', t.uuid, actor.user, 'created');
    this.announce(actor.user, changed);
    return made;
  }

  async update(actor: Actor, uuid: string, body: Record<string, unknown>): Promise<Stored<TagDoc>> {
    const changed: Member[] = [];
    await this.store.transaction(async (trx) => {
      const t = await this.load(actor, uuid, trx);
      const doc = { ...t.doc };
      if (body.name !== undefined) doc.name = readString(body.name, 'name', { nonEmpty: true, max: 1024 });
      if (body.meta !== undefined) doc.meta = readMeta(body.meta, 'meta');
      const members = body.resources === undefined ? null : await this.readResources(actor, body.resources, trx);
      await this.store.tags.update(doc, {}, trx);
      if (members) changed.push(...(await this.setMembers(uuid, members, trx)));
    });
    this.svc.publish('tags', uuid, actor.user, 'updated');
    this.announce(actor.user, changed);
    return (await this.store.tags.get(uuid))!;
  }

  /** Deleting a tag takes it off every resource and out of every ACL that named it. */
  async delete(actor: Actor, uuid: string): Promise<void> {
    const changed: Member[] = [];
    await this.store.transaction(async (trx) => {
      await this.load(actor, uuid, trx);
      changed.push(...(await this.setMembers(uuid, [], trx)));
      for (const a of await this.store.acls.getMany(await this.store.acls.naming(uuid, trx), trx))
        await this.store.acls.update({ ...a.doc, tags: a.doc.tags.filter((t) => t !== uuid) }, {}, trx);
      await this.store.acls.dropTag(uuid, trx);
      await this.store.tags.dropMembers(uuid, trx);
      await this.store.tags.delete(uuid, trx);
    });
    this.svc.publish('tags', uuid, actor.user, 'deleted');
    this.announce(actor.user, changed);
  }
}
