import type { Readable } from 'node:stream';
import { Type } from 'typebox';
import type { Services } from '../services.ts';
import type { DriveCommands } from '../commands/drives.ts';
import { MAX_CHUNK_SIZE, readChunkRef, ResumableUploads } from '../commands/resumable-upload.ts';
import { errors } from '../errors.ts';
import { created, readLimited, type Routes } from './http.ts';
import { multipartBoundary, parseMultipart } from './multipart.ts';
import { UuidParams } from './schemas.ts';

const tags = ['drives'];
const ChunkQuery = Type.Object({}, { additionalProperties: true });
/** A multipart chunk: the last one may be almost twice the chunk size, plus the form fields around it. */
const MULTIPART_LIMIT = 2 * MAX_CHUNK_SIZE + 64 * 1024;

/** POST /initupload/ and the chunk endpoints of pycloudsigma's resumable uploads (see docs/drives.md). */
export function resumableUploadRoutes(r: Routes, svc: Services, drives: DriveCommands): ResumableUploads {
  const uploads = new ResumableUploads(svc, drives);

  r.post(
    '/initupload/',
    { auth: 'user', tags, summary: 'Start a resumable upload: an empty drive of the exact size, status uploading' },
    async ({ actor, body }) => {
      const d = await uploads.init(actor, body);
      return created({ objects: [await drives.render(actor, d)] });
    },
  );

  r.get(
    '/drives/:uuid/upload/',
    {
      auth: 'user',
      tags,
      summary: 'Resumable upload: 200 if the chunk (resumableChunkNumber, resumableChunkSize) is already in, 404 if not',
      schema: { params: UuidParams, querystring: ChunkQuery },
    },
    async ({ actor, params, query }) => uploads.test(actor, params.uuid!, readChunkRef(query)),
  );

  r.post(
    '/drives/:uuid/upload/',
    {
      auth: 'user',
      tags,
      stream: true,
      summary: 'Resumable upload: one chunk, as resumable.js multipart form fields or as raw bytes with the chunk in the query',
      schema: { params: UuidParams, querystring: ChunkQuery },
    },
    async ({ actor, params, query, body, req }) => {
      const stream = (body && typeof (body as Readable).pipe === 'function' ? body : req.raw) as Readable;
      const boundary = multipartBoundary(req.headers['content-type']);
      let d;
      if (boundary) {
        const raw = await readLimited(stream, MULTIPART_LIMIT).catch((e) => {
          throw (e as { bodyTooLarge?: boolean }).bodyTooLarge ? errors.bodyTooLarge(MULTIPART_LIMIT) : e;
        });
        const fields = parseMultipart(raw, boundary);
        const text = Object.fromEntries([...fields].filter(([k]) => k !== 'file').map(([k, v]) => [k, v.toString('utf8')]));
        const file = fields.get('file');
        if (!file) throw errors.required('file');
        d = await uploads.write(actor, params.uuid!, readChunkRef({ ...query, ...text }), file, null);
      } else {
        const declared = req.headers['content-length'];
        d = await uploads.write(actor, params.uuid!, readChunkRef(query), stream, declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null);
      }
      return drives.render(actor, d);
    },
  );

  return uploads;
}
