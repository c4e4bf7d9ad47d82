import type { Services } from '../services.ts';
import { DriveCommands, renderDriveShort } from '../commands/drives.ts';
import { IpCommands } from '../commands/ips.ts';
import { VlanCommands } from '../commands/vlans.ts';
import { FirewallCommands } from '../commands/firewall.ts';
import { ServerCommands, renderServerShort } from '../commands/servers.ts';
import { TagCommands } from '../commands/tags.ts';
import { ownerRef, ref } from '../domain/refs.ts';
import type { ListQuery } from '../store/documents.ts';
import type { Actor } from '../commands/servers.ts';
import { created, noContent, objectBody, type Routes } from './http.ts';
import { createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS, type ListSpec, type Query } from './lists.ts';
import { AnyObject, CreateBody, ListQuerystring, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

const tags = ['tags'];
const { status: _status, ...FILTERS } = STANDARD_FILTERS;
const LIST: ListSpec = { filters: FILTERS, ordering: ['uuid', 'name'] };

type Lister = (actor: Actor, q: ListQuery, full: boolean) => Promise<{ total: number; items: unknown[] }>;

/** /tags/: CRUD, membership of any taggable resource, and the tag-scoped listings of servers, drives, IPs, VLANs and firewall policies. */
export function tagRoutes(r: Routes, svc: Services): TagCommands {
  const cmd = new TagCommands(svc);
  const servers = new ServerCommands(svc);
  const drives = new DriveCommands(svc);
  const ip = new IpCommands(svc);
  const vlan = new VlanCommands(svc);
  const fw = new FirewallCommands(svc);

  const list = async (actor: Actor, query: Query) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await svc.store.tags.list({ ...q, owner: actor.user });
    const out = [];
    for (const t of items) out.push(selectFields(await cmd.render(t), query));
    return envelope(out, q, total);
  };
  r.get('/tags/', { auth: 'user', tags, summary: 'List tags', schema: { querystring: ListQuerystring } }, ({ actor, query }) => list(actor, query));
  r.get('/tags/detail/', { auth: 'user', tags, summary: 'List tags in full', schema: { querystring: ListQuerystring } }, ({ actor, query }) =>
    list(actor, query),
  );
  r.get('/tags/schema/', { auth: 'user', tags, summary: 'Tag schema' }, async () => schemaDoc('tags'));

  r.get('/tags/:uuid/', { auth: 'user', tags, summary: 'Get a tag', schema: { params: UuidParams } }, async ({ actor, params, query }) =>
    selectFields(await cmd.render(await cmd.load(actor, params.uuid!)), query),
  );

  r.post('/tags/', { auth: 'user', tags, summary: 'Create tags (optionally with resources)', schema: { body: CreateBody } }, async ({ actor, body }) => {
    // libcloud sends {"objects": [{"name"}], "resources": [...]}: members given beside the list apply to each tag.
    const listed = body as { objects?: unknown; resources?: unknown } | null;
    const shared = listed && !Array.isArray(listed) && Array.isArray(listed.objects) && listed.resources !== undefined ? listed.resources : undefined;
    const items = createItems(body).map((i) => (shared !== undefined && i.resources === undefined ? { ...i, resources: shared } : i));
    const made = await cmd.create(actor, items);
    const out = [];
    for (const t of made) out.push(await cmd.render(t));
    return created({ objects: out });
  });

  r.put(
    '/tags/:uuid/',
    { auth: 'user', tags, summary: 'Edit a tag; resources replaces its members', schema: { params: UuidParams, body: AnyObject } },
    async ({ actor, params, body }) => cmd.render(await cmd.update(actor, params.uuid!, objectBody(body))),
  );

  r.delete(
    '/tags/:uuid/',
    { auth: 'user', tags, summary: 'Delete a tag (it leaves every resource and ACL)', schema: { params: UuidParams } },
    async ({ actor, params }) => {
      await cmd.delete(actor, params.uuid!);
      return noContent();
    },
  );

  const listers: Record<string, Lister> = {
    servers: async (actor, q, full) => {
      const { total, items } = await servers.list(actor, q);
      const out = [];
      for (const s of items) out.push(full ? await servers.render(actor, s) : renderServerShort(s));
      return { total, items: out };
    },
    drives: async (actor, q, full) => {
      const { total, items } = await drives.list(actor, q);
      const out = [];
      for (const d of items) out.push(full ? await drives.render(actor, d) : renderDriveShort(d));
      return { total, items: out };
    },
    ips: (actor, q, full) => ip.listIps(actor, q, full),
    vlans: async (actor, q, full) => {
      const { total, items } = await vlan.listVlans(actor, q);
      const out = [];
      for (const v of items)
        out.push(full ? await vlan.renderVlan(actor, v) : { owner: ownerRef(v.owner), resource_uri: ref('vlans', v.uuid).resource_uri, uuid: v.uuid });
      return { total, items: out };
    },
    fwpolicies: async (actor, q, full) => {
      const { total, items } = await fw.list(actor, q);
      return { total, items: full ? await fw.renderMany(actor, items) : items.map((p) => fw.renderShort(p)) };
    },
  };
  for (const [kind, lister] of Object.entries(listers)) {
    for (const full of [false, true]) {
      r.get(
        `/tags/:uuid/${kind}/${full ? 'detail/' : ''}`,
        {
          auth: 'user',
          tags,
          summary: `List the ${kind} carrying a tag${full ? ', in full' : ''}`,
          schema: { params: UuidParams, querystring: ListQuerystring },
        },
        async ({ actor, params, query }) => {
          await cmd.load(actor, params.uuid!);
          const q = parseListQuery(query, LIST);
          const { total, items } = await lister(actor, { ...q, tags: [[params.uuid!], ...q.tags] }, full);
          return envelope(
            items.map((x) => selectFields(x as object, query)),
            q,
            total,
          );
        },
      );
    }
  }
  return cmd;
}
