import type { Services } from '../services.ts';
import { FirewallCommands } from '../commands/firewall.ts';
import type { Actor } from '../commands/servers.ts';
import { errors } from '../errors.ts';
import { readRef } from '../domain/refs.ts';
import { created, noContent, objectBody, type Routes } from './http.ts';
import { createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS, type ListSpec, type Query } from './lists.ts';
import { AnyObject, CreateBody, ListQuerystring, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

const { status: _status, ...FILTERS } = STANDARD_FILTERS;
const LIST: ListSpec = { filters: FILTERS, ordering: ['uuid', 'name'] };
const tags = ['fwpolicies'];

/** /fwpolicies/: ordered accept/drop rules for the public NICs of servers (digest §12). */
export function firewallRoutes(r: Routes, svc: Services): FirewallCommands {
  const cmd = new FirewallCommands(svc);
  svc.serverReferenceChecks.push(cmd.checkNics);
  svc.renderers.set('fwpolicies', (actor, uuid) =>
    cmd.load(actor, uuid).then(
      (p) => cmd.render(actor, p),
      () => null,
    ),
  );

  const list = async (actor: Actor, query: Query, full: boolean) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await cmd.list(actor, q);
    const objects = full ? await cmd.renderMany(actor, items) : items.map((p) => cmd.renderShort(p));
    return envelope(
      objects.map((o) => selectFields(o, query)),
      q,
      total,
    );
  };
  r.get('/fwpolicies/', { auth: 'user', tags, summary: 'List firewall policies', schema: { querystring: ListQuerystring } }, ({ actor, query }) =>
    list(actor, query, false),
  );
  r.get(
    '/fwpolicies/detail/',
    { auth: 'user', tags, summary: 'List firewall policies in full', schema: { querystring: ListQuerystring } },
    ({ actor, query }) => list(actor, query, true),
  );
  r.get('/fwpolicies/schema/', { auth: 'user', tags, summary: 'Firewall policy schema' }, async () => schemaDoc('fwpolicy'));
  r.get('/fwpolicies/:uuid/', { auth: 'user', tags, summary: 'Get a firewall policy', schema: { params: UuidParams } }, async ({ actor, params, query }) =>
    selectFields(await cmd.render(actor, await cmd.load(actor, params.uuid!)), query),
  );
  r.post(
    '/fwpolicies/',
    { auth: 'user', tags, summary: 'Create firewall policies: name, meta, tags and rules', schema: { body: CreateBody } },
    async ({ actor, body }) => created({ objects: await cmd.renderMany(actor, await cmd.create(actor, createItems(body))) }),
  );
  const edit = {
    auth: 'user' as const,
    tags,
    summary: 'Edit the name, meta, tags and rules of a firewall policy',
    schema: { params: UuidParams, body: AnyObject },
  };
  r.put('/fwpolicies/:uuid/', edit, async ({ actor, params, body }) => cmd.render(actor, await cmd.update(actor, params.uuid!, objectBody(body))));
  const one = {
    auth: 'user' as const,
    tags,
    summary: 'Delete a firewall policy (its servers must be stopped; their NICs lose it)',
    schema: { params: UuidParams },
  };
  r.delete('/fwpolicies/:uuid/', one, async ({ actor, params }) => {
    await cmd.delete(actor, [params.uuid!]);
    return noContent();
  });
  const many = {
    auth: 'user' as const,
    tags,
    summary: 'Delete firewall policies: {"objects": [{"uuid": ...}]} (all of them, or none)',
    schema: { body: AnyObject },
  };
  r.delete('/fwpolicies/', many, async ({ actor, body }) => {
    const items = objectBody(body).objects;
    if (!Array.isArray(items) || !items.length) throw errors.invalid('objects', 'Give the policies to delete as {"objects": [{"uuid": ...}]}');
    await cmd.delete(
      actor,
      items.map((i) => readRef(i, 'objects')),
    );
    return noContent();
  });
  return cmd;
}
