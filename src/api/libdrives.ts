import { Type } from 'typebox';
import type { Services } from '../services.ts';
import type { DriveCommands } from '../commands/drives.ts';
import { mountedOn, renderLibDrive } from '../commands/drives.ts';
import type { DriveDoc } from '../domain/drive-definition.ts';
import type { Stored } from '../store/documents.ts';
import { errors } from '../errors.ts';
import { accepted, actionBody, type Routes } from './http.ts';
import { envelope, parseListQuery, selectFields, splitOr, type Query } from './lists.ts';
import { ActionBody, ListQuerystring, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

const tags = ['libdrives'];
/** The schema's filters; all exact except name__icontains. `category` matches one of the drive's categories. */
const FILTERS = ['arch', 'category', 'distribution', 'image_type', 'name', 'name__icontains', 'os', 'uuid', 'version'];

function field(d: Stored<DriveDoc>, key: string): unknown {
  if (key === 'name' || key === 'uuid') return d.doc[key];
  return (d.doc.library ?? {})[key];
}

/** The library is small (what an operator put in its folders): it is filtered here rather than in SQL. */
export function matches(d: Stored<DriveDoc>, query: Query): boolean {
  for (const key of FILTERS) {
    const raw = query[key];
    if (raw === undefined) continue;
    for (const v of Array.isArray(raw) ? raw : [raw]) {
      const wanted = splitOr(v);
      if (key === 'name__icontains') {
        if (!wanted.some((w) => d.doc.name.toLowerCase().includes(w.toLowerCase()))) return false;
        continue;
      }
      const have = field(d, key);
      const values = Array.isArray(have) ? have.map(String) : have === null || have === undefined ? [] : [String(have)];
      if (!wanted.some((w) => values.includes(w))) return false;
    }
  }
  return true;
}

export function libdriveRoutes(r: Routes, svc: Services, drives: DriveCommands): void {
  const list = async ({ actor, query }: { actor: { user: string }; query: Query }) => {
    const q = parseListQuery(query, { filters: {}, ordering: ['uuid', 'name'] });
    const all = await svc.store.drives.list({ owner: null, conditions: [], tags: [], tagNames: [], orderBy: q.orderBy, limit: 0, offset: 0 });
    const hits = all.items.filter((d) => d.status !== 'unavailable' && matches(d, query));
    const page = q.limit > 0 ? hits.slice(q.offset, q.offset + q.limit) : hits.slice(q.offset);
    const out = [];
    for (const d of page) out.push(selectFields(renderLibDrive(d, await mountedOn(svc.store, d.uuid, undefined, actor.user)), query));
    return envelope(out, q, hits.length);
  };
  r.get('/libdrives/', { auth: 'user', tags, summary: 'List library drives', schema: { querystring: ListQuerystring } }, list);
  r.get('/libdrives/detail/', { auth: 'user', tags, summary: 'List library drives (same as the list)', schema: { querystring: ListQuerystring } }, list);
  r.get('/libdrives/schema/', { auth: 'user', tags, summary: 'Library drive schema' }, async () => schemaDoc('libdrive'));

  r.get('/libdrives/:uuid/', { auth: 'user', tags, summary: 'Get a library drive', schema: { params: UuidParams } }, async ({ actor, params, query }) => {
    const d = await svc.store.drives.get(params.uuid!);
    if (!d || d.owner !== null) throw errors.notFound('Library drive');
    return selectFields(renderLibDrive(d, await mountedOn(svc.store, d.uuid, undefined, actor.user)), query);
  });

  r.post(
    '/libdrives/:uuid/action/',
    {
      auth: 'user',
      tags,
      summary: 'Library drive action: clone (into your account; its description is copied into meta)',
      schema: {
        params: UuidParams,
        querystring: Type.Object({ do: Type.Optional(Type.String()), avoid: Type.Optional(Type.String()) }, { additionalProperties: true }),
        body: ActionBody,
      },
    },
    async ({ actor, params, query, body }) => {
      if (!query.do) throw errors.required('do');
      if (query.do !== 'clone') throw errors.invalid('do', `Unknown action ${String(query.do)}; available: clone`);
      const d = await drives.clone(actor, params.uuid!, actionBody(body), query, { libraryOnly: true });
      return accepted({ objects: [await drives.render(actor, d)] });
    },
  );
}
