import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import type { Query, Routes } from './http.ts';
import { envelope, parseListQuery, selectFields } from './lists.ts';
import { ListQuerystring, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

const tags = ['jobs'];

/** /jobs/: read-only history of background work, newest change first, kept 3 days. */
export function jobRoutes(r: Routes, svc: Services): void {
  const list = async (actor: { user: string }, query: Query) => {
    const q = parseListQuery(query, { filters: { state: ['status', 'exact'], uuid: ['uuid', 'exact'] }, ordering: ['last_modified'] });
    // last_modified is the row's updated_at; the API's default order is newest change first.
    q.orderBy = q.orderBy ? { column: 'updated_at', desc: q.orderBy.desc } : { column: 'updated_at', desc: true };
    await svc.jobs.prune();
    const { total, items } = await svc.store.jobs.list({ ...q, owner: actor.user });
    const out = [];
    for (const j of items) out.push(selectFields(await svc.jobs.render(j), query));
    return envelope(out, q, total);
  };
  r.get('/jobs/', { auth: 'user', tags, summary: 'List jobs', schema: { querystring: ListQuerystring } }, ({ actor, query }) => list(actor, query));
  r.get('/jobs/detail/', { auth: 'user', tags, summary: 'List jobs', schema: { querystring: ListQuerystring } }, ({ actor, query }) => list(actor, query));
  r.get('/jobs/schema/', { auth: 'user', tags, summary: 'Job schema' }, async () => schemaDoc('jobs'));
  r.get('/jobs/:uuid/', { auth: 'user', tags, summary: 'Get a job', schema: { params: UuidParams } }, async ({ actor, params, query }) => {
    const j = await svc.jobs.get(actor.user, params.uuid!);
    if (!j) throw errors.notFound('Job');
    return selectFields(await svc.jobs.render(j), query);
  });
}
