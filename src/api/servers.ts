import { Type } from 'typebox';
import type { Services } from '../services.ts';
import { ServerCommands, renderServer, renderServerShort } from '../commands/servers.ts';
import { errors } from '../errors.ts';
import { accepted, actionBody, created, noContent, objectBody, type Routes } from './http.ts';
import { createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS, type ListSpec } from './lists.ts';
import { ActionBody, ActionReply, AnyObject, CreateBody, ListEnvelope, ListQuerystring, Server, ServerRuntime, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';
import { WireCache, WireObjects } from './wire.ts';

const LIST: ListSpec = { filters: STANDARD_FILTERS, ordering: ['uuid', 'name'] };
const tags = ['servers'];
const PartialServer = Type.Partial(Server, { additionalProperties: true });
const ShortServer = Type.Partial(Type.Pick(Server, ['name', 'owner', 'resource_uri', 'runtime', 'status', 'uuid']), { additionalProperties: true });

export function serverRoutes(r: Routes, svc: Services): ServerCommands {
  const servers = new ServerCommands(svc);
  const wire = new WireObjects(
    PartialServer,
    ListEnvelope(PartialServer),
    renderServer,
    (actor, objs) => svc.decorationsMany(actor, 'servers', objs),
    new WireCache(svc.config.wireCacheMb * 1024 * 1024),
  );

  r.get(
    '/servers/',
    { auth: 'user', tags, summary: 'List servers', schema: { querystring: ListQuerystring, response: { 200: ListEnvelope(ShortServer) } } },
    async ({ actor, query }) => {
      const q = parseListQuery(query, LIST);
      const { total, items } = await servers.list(actor, q);
      // Shared servers' runtimes show a grantee only the NICs he is shown: only they need decorating.
      const shared = items.filter((s) => s.owner !== actor.user);
      const deco = shared.length ? await svc.decorationsMany(actor, 'servers', shared) : new Map();
      return envelope(
        items.map((s) => selectFields(renderServerShort(s, deco.get(s.uuid)), query)),
        q,
        total,
      );
    },
  );

  r.get(
    '/servers/detail/',
    { auth: 'user', tags, summary: 'List servers in full', schema: { querystring: ListQuerystring, response: { 200: ListEnvelope(PartialServer) } } },
    async ({ actor, query }) => {
      const q = parseListQuery(query, LIST);
      if (!query.fields) return wire.list(actor, q, (reusable) => servers.listReusing(actor, q, reusable));
      const { total, items } = await servers.list(actor, q);
      const out = [];
      for (const s of await servers.renderMany(actor, items)) out.push(selectFields(s, query));
      return envelope(out, q, total);
    },
  );

  r.get('/servers/schema/', { auth: 'user', tags, summary: 'Server schema' }, async () => schemaDoc('server'));

  r.get('/servers/availability_groups/', { auth: 'user', tags, summary: 'Servers sharing a physical host' }, async ({ actor }) =>
    servers.availabilityGroups(actor),
  );

  r.get(
    '/servers/availability_groups/:uuid/',
    { auth: 'user', tags, summary: 'Servers on the same host as this one', schema: { params: UuidParams } },
    async ({ actor, params }) => servers.availabilityGroup(actor, params.uuid!),
  );

  r.get(
    '/servers/:uuid/',
    { auth: 'user', tags, summary: 'Get a server', schema: { params: UuidParams, response: { 200: PartialServer } } },
    async ({ actor, params, query }) => {
      const s = await servers.load(actor, params.uuid!);
      return query.fields ? selectFields(await servers.render(actor, s), query) : wire.one(actor, s);
    },
  );

  r.get(
    '/servers/:uuid/runtime/',
    { auth: 'user', tags, summary: 'Runtime of a running server', schema: { params: UuidParams, response: { 200: ServerRuntime } } },
    async ({ actor, params }) => servers.runtime(actor, params.uuid!),
  );

  r.post(
    '/servers/',
    { auth: 'user', tags, summary: 'Create servers', schema: { body: CreateBody, response: { 201: Type.Object({ objects: Type.Array(PartialServer) }) } } },
    async ({ actor, body }) => {
      const made = await servers.create(actor, createItems(body));
      const out = [];
      for (const s of made) out.push(await servers.render(actor, s));
      return created({ objects: out });
    },
  );

  r.put(
    '/servers/:uuid/',
    { auth: 'user', tags, summary: 'Edit a server', schema: { params: UuidParams, body: AnyObject, response: { 200: PartialServer } } },
    async ({ actor, params, body }) => servers.render(actor, await servers.update(actor, params.uuid!, objectBody(body))),
  );

  r.delete(
    '/servers/:uuid/',
    { auth: 'user', tags, summary: 'Delete a server', schema: { params: UuidParams, querystring: Type.Object({ recurse: Type.Optional(Type.String()) }) } },
    async ({ actor, params, query }) => {
      await servers.delete(actor, params.uuid!, query.recurse);
      return noContent();
    },
  );

  r.post(
    '/servers/:uuid/action/',
    {
      auth: 'user',
      tags,
      summary: 'Server action: start, stop, shutdown, restart, open_console, close_console, open_vnc, close_vnc, clone',
      schema: {
        params: UuidParams,
        querystring: Type.Object({ do: Type.Optional(Type.String()), avoid: Type.Optional(Type.String()) }, { additionalProperties: true }),
        body: ActionBody,
        response: { 202: Type.Union([ActionReply, PartialServer]) },
      },
    },
    async ({ actor, params, query, body }) => {
      if (!query.do) throw errors.required('do');
      const out = await servers.action(actor, params.uuid!, String(query.do), query, actionBody(body));
      return accepted(out);
    },
  );

  return servers;
}
