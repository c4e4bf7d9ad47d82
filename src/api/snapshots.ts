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

/** What /snapshots/ and /remotesnapshots/ both need of their commands: the same verbs over the same wire. */
type SnapshotVerbs = Pick<SnapshotCommands, 'list' | 'render' | 'load' | 'create' | 'update' | 'delete' | 'clone'>;

/** How one kind of snapshot is named on the wire and in the API's documentation. */
export interface SnapshotKind {
  path: string; // '/snapshots/'
  tag: string;
  noun: string; // 'snapshot', in summaries and error messages
  createSummary: string;
}

/** /snapshots/: point-in-time copies of drives, and clones of them into new drives. */
export function snapshotRoutes(r: Routes, svc: Services): void {
  snapshotKindRoutes(r, svc, new SnapshotCommands(svc), {
    path: '/snapshots/',
    tag: 'snapshots',
    noun: 'snapshot',
    createSummary: 'Snapshot drives (status creating, then available)',
  });
}

/**
 * The routes of one kind of snapshot. Local and remote snapshots differ only in where their bytes live, so their
 * listing, editing, batch limits and clone action are one code path.
 */
export function snapshotKindRoutes(r: Routes, svc: Services, cmd: SnapshotVerbs, kind: SnapshotKind): void {
  const { path, noun } = kind;
  const Noun = noun[0]!.toUpperCase() + noun.slice(1);
  const tags = [kind.tag];
  const drives = new DriveCommands(svc);
  const list = async (actor: Actor, query: Query) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await cmd.list(actor, q);
    const out = [];
    for (const s of items) out.push(selectFields(await cmd.render(actor, s), query));
    return envelope(out, q, total);
  };
  r.get(path, { auth: 'user', tags, summary: `List ${noun}s (?drive= for one drive)`, schema: { querystring: ListQuerystring } }, ({ actor, query }) =>
    list(actor, query),
  );
  r.get(`${path}detail/`, { auth: 'user', tags, summary: `List ${noun}s in full`, schema: { querystring: ListQuerystring } }, ({ actor, query }) =>
    list(actor, query),
  );
  r.get(`${path}schema/`, { auth: 'user', tags, summary: `${Noun} schema` }, async () => schemaDoc('snapshot'));
  r.get(`${path}:uuid/`, { auth: 'user', tags, summary: `Get a ${noun}`, schema: { params: UuidParams } }, async ({ actor, params, query }) =>
    selectFields(await cmd.render(actor, await cmd.load(actor, params.uuid!)), query),
  );
  r.post(path, { auth: 'user', tags, summary: kind.createSummary, schema: { body: CreateBody } }, async ({ actor, body }) => {
    const made = await cmd.create(actor, createItems(body));
    const out = [];
    for (const s of made) out.push(await cmd.render(actor, s));
    return created({ objects: out });
  });
  r.put(
    `${path}:uuid/`,
    { auth: 'user', tags, summary: `Edit the name, meta and tags of a ${noun}`, schema: { params: UuidParams, body: AnyObject } },
    async ({ actor, params, body }) => cmd.render(actor, await cmd.update(actor, params.uuid!, objectBody(body))),
  );
  r.delete(`${path}:uuid/`, { auth: 'user', tags, summary: `Delete a ${noun}`, schema: { params: UuidParams } }, async ({ actor, params }) => {
    await cmd.delete(actor, [params.uuid!]);
    return noContent();
  });
  r.delete(path, { auth: 'user', tags, summary: `Delete ${noun}s: {"objects": [{"uuid": ...}]}`, schema: { body: AnyObject } }, async ({ actor, body }) => {
    const items = objectBody(body).objects;
    if (!Array.isArray(items) || !items.length) throw errors.invalid('objects', `Give the ${noun}s to delete as {"objects": [{"uuid": ...}]}`);
    await cmd.delete(
      actor,
      boundedObjects(items).map((i) => readRef(i, 'objects')),
    );
    return noContent();
  });
  r.post(
    `${path}:uuid/action/`,
    {
      auth: 'user',
      tags,
      summary: `${Noun} action: clone (into a new drive; answers the drive)`,
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
}
