import { Type } from 'typebox';
import type { Services } from '../services.ts';
import { SnapshotCommands } from '../commands/snapshots.ts';
import { DriveCommands } from '../commands/drives.ts';
import { errors } from '../errors.ts';
import { readRef } from '../domain/refs.ts';
import type { Actor } from '../commands/servers.ts';
import { accepted, actionBody, created, noContent, objectBody, type Routes } from './http.ts';
import { boundedObjects, createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS, type ListSpec, type Query } from './lists.ts';
import { ActionBody, AnyObject, CreateBody, ListQuerystring, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

const LIST: ListSpec = { filters: { ...STANDARD_FILTERS, drive: ['drive', 'exact'] }, ordering: ['uuid', 'name'] };
const tags = ['snapshots'];

/** /snapshots/: point-in-time copies of drives, and clones of them into new drives. */
export function snapshotRoutes(r: Routes, svc: Services): SnapshotCommands {
  const cmd = new SnapshotCommands(svc);
  const drives = new DriveCommands(svc);
  const list = async (actor: Actor, query: Query) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await cmd.list(actor, q);
    const out = [];
    for (const s of items) out.push(selectFields(await cmd.render(actor, s), query));
    return envelope(out, q, total);
  };
  r.get(
    '/snapshots/',
    { auth: 'user', tags, summary: 'List snapshots (?drive= for one drive)', schema: { querystring: ListQuerystring } },
    ({ actor, query }) => list(actor, query),
  );
  r.get('/snapshots/detail/', { auth: 'user', tags, summary: 'List snapshots in full', schema: { querystring: ListQuerystring } }, ({ actor, query }) =>
    list(actor, query),
  );
  r.get('/snapshots/schema/', { auth: 'user', tags, summary: 'Snapshot schema' }, async () => schemaDoc('snapshot'));
  r.get('/snapshots/:uuid/', { auth: 'user', tags, summary: 'Get a snapshot', schema: { params: UuidParams } }, async ({ actor, params, query }) =>
    selectFields(await cmd.render(actor, await cmd.load(actor, params.uuid!)), query),
  );
  r.post(
    '/snapshots/',
    { auth: 'user', tags, summary: 'Snapshot drives (status creating, then available)', schema: { body: CreateBody } },
    async ({ actor, body }) => {
      const made = await cmd.create(actor, createItems(body));
      const out = [];
      for (const s of made) out.push(await cmd.render(actor, s));
      return created({ objects: out });
    },
  );
  r.put(
    '/snapshots/:uuid/',
    { auth: 'user', tags, summary: 'Edit the name, meta and tags of a snapshot', schema: { params: UuidParams, body: AnyObject } },
    async ({ actor, params, body }) => cmd.render(actor, await cmd.update(actor, params.uuid!, objectBody(body))),
  );
  r.delete('/snapshots/:uuid/', { auth: 'user', tags, summary: 'Delete a snapshot', schema: { params: UuidParams } }, async ({ actor, params }) => {
    await cmd.delete(actor, [params.uuid!]);
    return noContent();
  });
  r.delete(
    '/snapshots/',
    { auth: 'user', tags, summary: 'Delete snapshots: {"objects": [{"uuid": ...}]}', schema: { body: AnyObject } },
    async ({ actor, body }) => {
      const items = objectBody(body).objects;
      if (!Array.isArray(items) || !items.length) throw errors.invalid('objects', 'Give the snapshots to delete as {"objects": [{"uuid": ...}]}');
      await cmd.delete(
        actor,
        boundedObjects(items).map((i) => readRef(i, 'objects')),
      );
      return noContent();
    },
  );
  r.post(
    '/snapshots/:uuid/action/',
    {
      auth: 'user',
      tags,
      summary: 'Snapshot action: clone (into a new drive; answers the drive)',
      schema: {
        params: UuidParams,
        querystring: Type.Object({ do: Type.Optional(Type.String()), avoid: Type.Optional(Type.String()) }, { additionalProperties: true }),
        body: ActionBody,
      },
    },
    async ({ actor, params, query, body }) => {
      if (!query.do) throw errors.required('do');
      if (query.do !== 'clone') throw errors.invalid('do', `Unknown action ${query.do}; available: clone`);
      const dst = await cmd.clone(actor, params.uuid!, actionBody(body));
      return accepted(await drives.render(actor, (await svc.store.drives.get(dst))!));
    },
  );
  return cmd;
}
