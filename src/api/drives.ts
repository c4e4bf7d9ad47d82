import fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { Actor } from '../domain/actor.ts';
import { Type } from 'typebox';
import type { Services } from '../services.ts';
import { DriveCommands, renderDriveShort } from '../commands/drives.ts';
import { errors } from '../errors.ts';
import { readRef } from '../domain/refs.ts';
import { accepted, actionBody, created, FileSlice, noContent, objectBody, Reply, type Routes } from './http.ts';
import { boundedObjects, createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS, type ListSpec } from './lists.ts';
import { ActionBody, AnyObject, CreateBody, ListQuerystring, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';
import { resumableUploadRoutes } from './resumable-upload.ts';

const LIST: ListSpec = { filters: STANDARD_FILTERS, ordering: ['uuid', 'name'] };
const tags = ['drives'];
const ActionQuery = Type.Object({ do: Type.Optional(Type.String()), avoid: Type.Optional(Type.String()) }, { additionalProperties: true });

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` against a file of `size` bytes; null = the whole file; 'bad' = unsatisfiable. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'bad' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // several ranges or another unit: send it all, as RFC 9110 allows
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'bad';
  return { start, end };
}

/** Bulk delete bodies: {"objects": [{"uuid": …}, …]}, a list of those, or of bare uuids. */
function bulkUuids(body: unknown): string[] {
  const listed = (body as { objects?: unknown } | null)?.objects;
  const items: unknown[] | null = Array.isArray(body) ? body : body && typeof body === 'object' && Array.isArray(listed) ? listed : null;
  if (!items || items.length === 0) throw errors.invalid('objects', 'Expected {"objects": [{"uuid": "…"}, …]}');
  return boundedObjects(items as unknown[]).map((o: unknown) => readRef(o, 'objects'));
}

export function driveRoutes(r: Routes, svc: Services): DriveCommands {
  const drives = new DriveCommands(svc);
  const uploads = resumableUploadRoutes(r, svc, drives);

  r.get(
    '/drives/',
    { auth: 'user', tags, summary: 'List drives (library drives are not listed)', schema: { querystring: ListQuerystring } },
    async ({ actor, query }) => {
      const q = parseListQuery(query, LIST);
      const { total, items } = await drives.list(actor, q);
      return envelope(
        items.map((d) => selectFields(renderDriveShort(d), query)),
        q,
        total,
      );
    },
  );

  r.get('/drives/detail/', { auth: 'user', tags, summary: 'List drives in full', schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await drives.list(actor, q);
    const out = [];
    for (const d of items) out.push(selectFields(await drives.render(actor, d), query));
    return envelope(out, q, total);
  });

  r.get('/drives/schema/', { auth: 'user', tags, summary: 'Drive schema' }, async () => schemaDoc('drive'));

  // One storage pool: no two drives are kept apart, so every group is empty.
  r.get('/drives/availability_groups/', { auth: 'user', tags, summary: 'Drives that share a storage host' }, async () => []);
  r.get(
    '/drives/availability_groups/:uuid/',
    { auth: 'user', tags, summary: 'Drives on the same storage host as this one', schema: { params: UuidParams } },
    async ({ actor, params }) => {
      await drives.load(actor, params.uuid!);
      return [];
    },
  );

  r.get(
    '/drives/:uuid/',
    { auth: 'user', tags, summary: 'Get a drive (also library drives)', schema: { params: UuidParams } },
    async ({ actor, params, query }) => selectFields(await drives.render(actor, await drives.load(actor, params.uuid!)), query),
  );

  r.post('/drives/', { auth: 'user', tags, summary: 'Create drives', schema: { body: CreateBody } }, async ({ actor, body }) => {
    const made = await drives.create(actor, createItems(body));
    const out = [];
    for (const d of made) out.push(await drives.render(actor, d));
    return created({ objects: out });
  });

  r.put(
    '/drives/:uuid/',
    { auth: 'user', tags, summary: 'Edit a drive (a bigger size resizes it)', schema: { params: UuidParams, body: AnyObject } },
    async ({ actor, params, body }) => drives.render(actor, await drives.update(actor, params.uuid!, objectBody(body))),
  );

  r.delete('/drives/:uuid/', { auth: 'user', tags, summary: 'Delete a drive', schema: { params: UuidParams } }, async ({ actor, params }) => {
    await drives.delete(actor, [params.uuid!]);
    return noContent();
  });

  r.delete('/drives/', { auth: 'user', tags, summary: 'Delete several drives: {"objects": [{"uuid": …}, …]}' }, async ({ actor, body }) => {
    await drives.delete(actor, bulkUuids(body));
    return noContent();
  });

  r.post(
    '/drives/:uuid/action/',
    { auth: 'user', tags, summary: 'Drive action: clone, resize, upload_chunk', schema: { params: UuidParams, querystring: ActionQuery, body: ActionBody } },
    async ({ actor, params, query, body }) => {
      if (!query.do) throw errors.required('do');
      if (query.do === 'upload_chunk') return uploads.link(actor, params.uuid!, actionBody(body));
      const d = await drives.action(actor, params.uuid!, String(query.do), query, actionBody(body));
      return accepted({ objects: [await drives.render(actor, d)] });
    },
  );

  const upload = async ({ actor, req, body, params }: { actor: Actor; req: FastifyRequest; body: unknown; params: Record<string, string> }) => {
    const declared = req.headers['content-length'];
    const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null;
    const stream = (body && typeof (body as Readable).pipe === 'function' ? body : req.raw) as Readable;
    const uuid = await drives.upload(actor, stream, length, params.filename);
    return new Reply(201, uuid, { 'content-type': 'text/plain; charset=utf-8' });
  };
  const uploadOpts = {
    tags,
    auth: 'basic-only' as const,
    stream: true,
    summary: 'Upload a raw image as a new drive (Basic auth only); answers its uuid as text',
  };
  r.post('/drives/upload/', uploadOpts, upload);
  r.post('/drives/upload/:filename', uploadOpts, upload);
  // `curl -T file URL` sends a PUT unless told otherwise: take it the same way.
  r.put('/drives/upload/', uploadOpts, upload);
  r.put('/drives/upload/:filename', uploadOpts, upload);

  r.get(
    '/drives/:uuid/download/',
    { auth: 'user', tags, stream: true, summary: 'Download a drive image (raw); supports Range', schema: { params: UuidParams } },
    async ({ actor, params, req }) => {
      const file = await drives.forDownload(actor, params.uuid!);
      const size = fs.statSync(file).size;
      const range = parseRange(req.headers.range, size);
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename="${params.uuid}"`,
        'accept-ranges': 'bytes',
      };
      if (range === 'bad') return new Reply(416, '', { ...headers, 'content-range': `bytes */${size}` });
      const { start, end } = range ?? { start: 0, end: size - 1 };
      const stream = size === 0 ? '' : new FileSlice(file, start, end);
      headers['content-length'] = String(size === 0 ? 0 : end - start + 1);
      if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
      return new Reply(range ? 206 : 200, stream, headers);
    },
  );

  return drives;
}
