import { Type } from 'typebox';
import type { Services } from '../services.ts';
import { DriveCommands, renderDriveShort } from '../commands/drives.ts';
import { created, noContent, type Routes } from './http.ts';
import { createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS, type ListSpec } from './lists.ts';
import { CreateBody, ListQuerystring, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

const LIST: ListSpec = { filters: STANDARD_FILTERS, ordering: ['uuid', 'name'] };
const tags = ['drives'];

export function driveRoutes(r: Routes, svc: Services): DriveCommands {
  const drives = new DriveCommands(svc);

  r.get('/drives/', { tags, summary: 'List drives', schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await drives.list(actor, q);
    return envelope(items.map((d) => selectFields(renderDriveShort(d), query)), q, total);
  });

  r.get('/drives/detail/', { tags, summary: 'List drives in full', schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await drives.list(actor, q);
    const out = [];
    for (const d of items) out.push(selectFields(await drives.render(actor, d), query));
    return envelope(out, q, total);
  });

  r.get('/drives/schema/', { tags, summary: 'Drive schema' }, async () => schemaDoc('drive'));

  r.get('/drives/:uuid/', { tags, summary: 'Get a drive (also library drives)', schema: { params: UuidParams } }, async ({ actor, params, query }) =>
    selectFields(await drives.render(actor, await drives.load(actor, params.uuid!)), query),
  );

  r.post('/drives/', { tags, summary: 'Create drives', schema: { body: CreateBody } }, async ({ actor, body }) => {
    const made = await drives.create(actor, createItems(body));
    const out = [];
    for (const d of made) out.push(await drives.render(actor, d));
    return created({ objects: out });
  });

  r.delete('/drives/:uuid/', { tags, summary: 'Delete a drive', schema: { params: UuidParams } }, async ({ actor, params }) => {
    await drives.delete(actor, params.uuid!);
    return noContent();
  });

  void Type;
  return drives;
}
