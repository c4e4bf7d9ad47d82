import type { Services } from '../services.ts';
import { AclCommands } from '../commands/acls.ts';
import { created, noContent, objectBody, type Query, type Routes } from './http.ts';
import { createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS } from './lists.ts';
import { AnyObject, CreateBody, ListQuerystring, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

const tags = ['acls'];

/** /acls/: share tagged servers and drives with other accounts. */
export function aclRoutes(r: Routes, svc: Services): void {
  const cmd = new AclCommands(svc);
  const list = async (actor: { user: string }, query: Query) => {
    const { status: _s, ...filters } = STANDARD_FILTERS;
    const q = parseListQuery(query, { filters, ordering: ['uuid', 'name'] });
    const { total, items } = await svc.store.acls.list({ ...q, owner: actor.user });
    const out = [];
    for (const a of items) out.push(selectFields(await cmd.render(a), query));
    return envelope(out, q, total);
  };
  r.get('/acls/', { auth: 'user', tags, summary: 'List ACLs', schema: { querystring: ListQuerystring } }, ({ actor, query }) => list(actor, query));
  r.get('/acls/detail/', { auth: 'user', tags, summary: 'List ACLs', schema: { querystring: ListQuerystring } }, ({ actor, query }) => list(actor, query));
  r.get('/acls/schema/', { auth: 'user', tags, summary: 'ACL schema' }, async () => schemaDoc('acls'));
  r.get('/acls/:uuid/', { auth: 'user', tags, summary: 'Get an ACL', schema: { params: UuidParams } }, async ({ actor, params, query }) =>
    selectFields(await cmd.render(await cmd.load(actor, params.uuid!)), query),
  );
  r.post(
    '/acls/',
    { auth: 'user', tags, summary: 'Create ACLs: grantees, rules (permissions) and tags', schema: { body: CreateBody } },
    async ({ actor, body }) => {
      const made = await cmd.create(actor, createItems(body));
      const out = [];
      for (const a of made) out.push(await cmd.render(a));
      return created({ objects: out });
    },
  );
  r.put('/acls/:uuid/', { auth: 'user', tags, summary: 'Edit an ACL', schema: { params: UuidParams, body: AnyObject } }, async ({ actor, params, body }) =>
    cmd.render(await cmd.update(actor, params.uuid!, objectBody(body))),
  );
  r.delete('/acls/:uuid/', { auth: 'user', tags, summary: 'Delete an ACL', schema: { params: UuidParams } }, async ({ actor, params }) => {
    await cmd.delete(actor, params.uuid!);
    return noContent();
  });
}
