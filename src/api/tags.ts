import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid } from '../domain/ids.ts';
import { readMeta, readString } from '../domain/input.ts';
import { ownerRef, ref } from '../domain/refs.ts';
import type { Stored } from '../store/documents.ts';
import type { TagDoc } from '../store/index.ts';
import { created, type Routes } from './http.ts';
import { createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS } from './lists.ts';
import { CreateBody, ListQuerystring } from './schemas.ts';

const tags = ['tags'];

export async function renderTag(svc: Services, t: Stored<TagDoc>) {
  const members = (await svc.store.db
    .selectFrom('resource_tags')
    .select(['resource_type', 'resource_uuid'])
    .where('tag_uuid', '=', t.uuid)
    .execute()) as Array<{ resource_type: string; resource_uuid: string }>;
  return {
    meta: t.doc.meta,
    name: t.doc.name,
    owner: ownerRef(t.owner),
    resource_uri: ref('tags', t.uuid).resource_uri,
    resources: members.map((m) => ({ ...ref(m.resource_type, m.resource_uuid), res_type: m.resource_type, owner: ownerRef(t.owner) })),
    uuid: t.uuid,
  };
}

/** The minimum of tags that servers reference: create and list. */
export function tagRoutes(r: Routes, svc: Services): void {
  r.get('/tags/', { tags, summary: 'List tags', schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
    const q = parseListQuery(query, { filters: STANDARD_FILTERS, ordering: ['name'] });
    const { total, items } = await svc.store.tags.list({ ...q, owner: actor.user });
    const out = [];
    for (const t of items) out.push(selectFields(await renderTag(svc, t), query));
    return envelope(out, q, total);
  });

  r.post('/tags/', { tags, summary: 'Create tags', schema: { body: CreateBody } }, async ({ actor, body }) => {
    const docs: TagDoc[] = createItems(body).map((b) => {
      if (b.name === undefined || b.name === null) throw errors.required('name');
      return { uuid: newUuid(), name: readString(b.name, 'name', { nonEmpty: true, max: 1024 }), meta: b.meta === undefined ? {} : readMeta(b.meta, 'meta') };
    });
    const made = await svc.store.transaction(async (trx) => {
      for (const d of docs) await svc.store.tags.insert(actor.user, d, '', trx);
      return svc.store.tags.getMany(docs.map((d) => d.uuid), trx);
    });
    const out = [];
    for (const t of made) out.push(await renderTag(svc, t));
    return created({ objects: out });
  });
}
