import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid } from '../domain/ids.ts';
import { readMeta, readString } from '../domain/input.ts';
import { isUuid, ownerRef, readRefList, ref } from '../domain/refs.ts';
import type { Stored } from '../store/documents.ts';
import type { AclDoc } from '../store/index.ts';
import { PERMISSIONS } from './access.ts';
import type { Actor } from './servers.ts';
import type { Db } from '../store/schema.ts';

/** ACLs: grantees get the listed permissions on every resource carrying one of the listed tags. */
export class AclCommands {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  async load(actor: Actor, uuid: string, trx?: Db): Promise<Stored<AclDoc>> {
    const a = await this.store.acls.get(uuid, trx);
    if (!a || a.owner !== actor.user) throw errors.notFound('ACL');
    return a;
  }

  async render(a: Stored<AclDoc>) {
    const emails = new Map<string, string>();
    for (const g of a.doc.grantees) emails.set(g.uuid, (await this.store.users.byUuid(g.uuid))?.email ?? g.email ?? '');
    return {
      grantees: a.doc.grantees.map((g) => ({ email: emails.get(g.uuid) || null, resource_uri: ref('user', g.uuid), uuid: g.uuid })),
      meta: a.doc.meta,
      name: a.doc.name,
      owner: ownerRef(a.owner),
      resource_uri: ref('acls', a.uuid).resource_uri,
      rules: a.doc.rules.map((permission) => ({ permission })),
      tags: a.doc.tags.map((t) => ref('tags', t)),
      uuid: a.uuid,
    };
  }

  /** Users by uuid or email; each must exist. */
  private async readGrantees(value: unknown, trx: Db): Promise<AclDoc['grantees']> {
    if (value === null || value === undefined) return [];
    if (!Array.isArray(value)) throw errors.invalid('grantees', 'grantees must be a list of users ({"uuid": ...} or {"email": ...})');
    const out: AclDoc['grantees'] = [];
    for (const g of value) {
      let uuid: string | undefined;
      let email: string | undefined;
      if (typeof g === 'string') g.includes('@') ? (email = g) : (uuid = g);
      else if (g && typeof g === 'object') {
        const o = g as Record<string, unknown>;
        if (typeof o.uuid === 'string') uuid = o.uuid;
        else if (o.resource_uri && typeof o.resource_uri === 'object' && typeof (o.resource_uri as { uuid?: unknown }).uuid === 'string')
          uuid = (o.resource_uri as { uuid: string }).uuid;
        if (typeof o.email === 'string') email = o.email;
      }
      if (!uuid && !email) throw errors.invalid('grantees', 'Each grantee needs a uuid or an email');
      // By email, any address is taken (a pending grantee until it has an account), so that the answer cannot tell
      // which addresses have one. By uuid, only the uuids this cloud handed out: users' and pending grantees'.
      const row = uuid
        ? isUuid(uuid)
          ? await this.store.users.granteeByUuid(trx, uuid)
          : undefined
        : email!.length <= 254 && /^[^\s@]+@[^\s@]+$/.test(email!)
          ? await this.store.users.granteeByEmail(trx, email!)
          : undefined;
      if (!row) throw errors.invalid('grantees', 'Each grantee must be a user of this cloud, given by uuid or email');
      if (!out.some((x) => x.uuid === row.uuid)) out.push({ uuid: String(row.uuid), email: String(row.email) });
    }
    return out;
  }

  private readRules(value: unknown): string[] {
    if (value === null || value === undefined) return [];
    if (!Array.isArray(value)) throw errors.invalid('rules', 'rules must be a list of {"permission": ...}');
    const out: string[] = [];
    for (const r of value) {
      const p = typeof r === 'string' ? r : r && typeof r === 'object' ? (r as { permission?: unknown }).permission : undefined;
      if (typeof p !== 'string' || !(PERMISSIONS as readonly string[]).includes(p.toUpperCase()))
        throw errors.invalid('rules', `Unknown permission ${JSON.stringify(p)}; allowed: ${PERMISSIONS.join(', ')}`);
      if (!out.includes(p.toUpperCase())) out.push(p.toUpperCase());
    }
    return out;
  }

  private async readTags(actor: Actor, value: unknown, trx: Db): Promise<string[]> {
    const tags = readRefList(value, 'tags');
    const found = await this.store.tags.getMany(tags, trx);
    for (const t of tags) if (!found.some((x) => x.uuid === t && x.owner === actor.user)) throw errors.invalid('tags', `Tag ${t} does not exist`);
    return tags;
  }

  private async apply(actor: Actor, base: AclDoc, body: Record<string, unknown>, trx: Db): Promise<AclDoc> {
    const doc = structuredClone(base);
    if (body.name !== undefined) doc.name = body.name === null ? '' : readString(body.name, 'name', { max: 1024 });
    if (body.meta !== undefined) doc.meta = readMeta(body.meta, 'meta');
    if (body.rules !== undefined) doc.rules = this.readRules(body.rules);
    if (body.grantees !== undefined) doc.grantees = await this.readGrantees(body.grantees, trx);
    if (body.tags !== undefined) doc.tags = await this.readTags(actor, body.tags, trx);
    return doc;
  }

  async create(actor: Actor, bodies: Record<string, unknown>[]): Promise<Stored<AclDoc>[]> {
    const made = await this.store.transaction(async (trx) => {
      const uuids: string[] = [];
      for (const b of bodies) {
        const doc = await this.apply(actor, { uuid: newUuid(), name: '', meta: {}, grantees: [], rules: [], tags: [] }, b, trx);
        await this.store.acls.insert(actor.user, doc, '', trx);
        await this.store.acls.writeLinks(doc, trx);
        uuids.push(doc.uuid);
      }
      return this.store.acls.getMany(uuids, trx);
    });
    for (const a of made) this.svc.publish('acls', a.uuid, actor.user, 'created');
    return made;
  }

  async update(actor: Actor, uuid: string, body: Record<string, unknown>): Promise<Stored<AclDoc>> {
    await this.store.transaction(async (trx) => {
      const a = await this.load(actor, uuid, trx);
      const doc = await this.apply(actor, a.doc, body, trx);
      await this.store.acls.update(doc, {}, trx);
      await this.store.acls.writeLinks(doc, trx);
    });
    this.svc.publish('acls', uuid, actor.user, 'updated');
    return (await this.store.acls.get(uuid))!;
  }

  async delete(actor: Actor, uuid: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      await this.load(actor, uuid, trx);
      await this.store.acls.dropLinks(uuid, trx);
      await this.store.acls.delete(uuid, trx);
    });
    this.svc.publish('acls', uuid, actor.user, 'deleted');
  }
}
