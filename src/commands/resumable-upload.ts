import type { Readable } from 'node:stream';
import type { Services } from '../services.ts';
import { ApiError, errors } from '../errors.ts';
import { applyDriveInput, roundSize, storageLimits, type DriveDoc } from '../domain/drive-definition.ts';
import { readInt } from '../domain/input.ts';
import { isoSeconds } from '../domain/ids.ts';
import { API } from '../domain/refs.ts';
import type { Stored } from '../store/documents.ts';
import { ChunkLengthError, storageFailure, storageIsFull } from '../storage/drive-storage.ts';
import type { DriveCommands } from './drives.ts';
import type { Actor } from './servers.ts';

/** Largest chunk size accepted (pycloudsigma sends 5 or 10 MiB); a multipart chunk is held in memory once. */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;

/** Where one chunk of a drive of `total` bytes lies: resumable.js numbering, from 1, the last chunk the bigger. */
export function chunkExtent(total: number, chunkSize: number, chunkNumber: number): { offset: number; length: number; count: number } {
  const count = Math.max(1, Math.floor(total / chunkSize));
  if (chunkNumber > count)
    throw errors.invalid('resumableChunkNumber', `A drive of ${total} bytes has ${count} chunks of ${chunkSize} bytes, not ${chunkNumber}`);
  const offset = (chunkNumber - 1) * chunkSize;
  return { offset, length: chunkNumber === count ? total - offset : chunkSize, count };
}

export interface ChunkRef {
  number: number;
  size: number;
  /** resumableTotalSize, when the client says it: must be the drive's size */
  total?: number;
}

/** Reads chunk number/size/total from resumable.js fields (query string or form fields). */
export function readChunkRef(fields: Record<string, unknown>): ChunkRef {
  if (fields.resumableChunkNumber === undefined) throw errors.required('resumableChunkNumber');
  if (fields.resumableChunkSize === undefined) throw errors.required('resumableChunkSize');
  const number = readInt(fields.resumableChunkNumber, 'resumableChunkNumber', { min: 1 });
  const size = readInt(fields.resumableChunkSize, 'resumableChunkSize', { min: 1, max: MAX_CHUNK_SIZE });
  const total = fields.resumableTotalSize === undefined ? undefined : readInt(fields.resumableTotalSize, 'resumableTotalSize', { min: 1 });
  return { number, size, ...(total !== undefined ? { total } : {}) };
}

/**
 * pycloudsigma's resumable uploads: POST /initupload/ makes an empty drive of the exact size (status uploading);
 * chunks are tested (GET) and written (POST) at their offsets in any order, retries included; when the last missing
 * chunk arrives the image is renamed into place and the drive becomes unmounted. Until then it is never mountable,
 * clonable or downloadable.
 */
export class ResumableUploads {
  constructor(
    private readonly svc: Services,
    private readonly drives: DriveCommands,
  ) {}

  /** POST /initupload/: `{"objects": [drive]}` (pycloudsigma's Upload) or a bare drive (its older upload client). */
  async init(actor: Actor, body: unknown): Promise<Stored<DriveDoc>> {
    let item: unknown = body;
    if (body && typeof body === 'object' && !Array.isArray(body) && 'objects' in body) {
      const list = (body as { objects: unknown }).objects;
      if (!Array.isArray(list) || list.length !== 1)
        throw errors.invalid('objects', 'An upload starts one drive: {"objects": [{"name": …, "size": …, "media": …}]}');
      item = list[0];
    }
    if (!item || typeof item !== 'object' || Array.isArray(item)) throw errors.invalid(null, 'Expected a JSON object');
    const input = item as Record<string, unknown>;
    if (input.size === undefined || input.size === null) throw errors.required('size');
    const size = readInt(input.size, 'size', { min: 1 });
    const caps = this.svc.capabilities;
    const storageType = typeof input.storage_type === 'string' ? input.storage_type : String(caps.default_storage_type ?? 'dssd');
    const min = storageLimits(caps, storageType)?.size.min ?? 0;
    // The drive keeps the exact size (the client compares it with its file); limits are checked as if rounded.
    const doc = applyDriveInput(
      null,
      { name: `Upload_${isoSeconds(new Date()).slice(0, 19).replace('T', ' ')}`, media: 'disk', ...input, size: Math.max(roundSize(size), min) },
      caps,
    );
    doc.size = size;
    doc.resumable = true;
    if (doc.tags.length) throw errors.invalid('tags', 'Tag an uploaded drive once its upload is complete');
    await this.svc.store.drives.insert(actor.user, doc, 'uploading');
    try {
      await this.svc.storage.startResumable(doc.uuid, size);
    } catch (e) {
      await this.svc.store.drives.delete(doc.uuid).catch(() => false);
      await this.svc.afterDriveDelete([doc.uuid]);
      throw e;
    }
    this.svc.publish('drives', doc.uuid, actor.user, 'created');
    return (await this.svc.store.drives.get(doc.uuid))!;
  }

  /** The actor's own drive (others' visible drives are refused, invisible ones are not found). */
  private async ownDrive(actor: Actor, uuid: string): Promise<Stored<DriveDoc>> {
    const d = await this.drives.load(actor, uuid, { library: false });
    if (d.owner !== actor.user) throw errors.permission('Only the owner may upload into a drive');
    return d;
  }

  private async received(uuid: string, chunkNumber: number): Promise<boolean> {
    return this.svc.store.uploadChunks.has(uuid, chunkNumber);
  }

  /** The chunk size an upload has fixed (by its first written chunk), if any. */
  /** Checks a chunk against its drive; returns where it goes. */
  private async locate(d: Stored<DriveDoc>, chunk: ChunkRef) {
    if (chunk.total !== undefined && chunk.total !== d.doc.size)
      throw errors.invalid('resumableTotalSize', `The drive is ${d.doc.size} bytes, not ${chunk.total}: upload a file of the drive's size`);
    const fixed = await this.svc.store.uploadChunks.fixedSize(d.uuid);
    if (fixed !== null && fixed !== chunk.size) throw errors.invalid('resumableChunkSize', `This upload's chunks are ${fixed} bytes, not ${chunk.size}`);
    return chunkExtent(d.doc.size, chunk.size, chunk.number);
  }

  private uploading(d: Stored<DriveDoc>): boolean {
    return d.status === 'uploading' && d.doc.resumable === true;
  }

  /** GET /drives/{uuid}/upload/: 200 when the chunk is already in (the client skips it), 404 when it must be sent. */
  async test(actor: Actor, uuid: string, chunk: ChunkRef): Promise<{ chunk: number; received: true }> {
    const d = await this.ownDrive(actor, uuid);
    await this.locate(d, chunk);
    if (!(await this.received(uuid, chunk.number))) {
      if (!this.uploading(d)) throw errors.permission(`Drive ${uuid} is not being uploaded (status "${d.status}")`);
      throw errors.notFound('Chunk');
    }
    if (this.uploading(d)) await this.completeIfWhole(d);
    return { chunk: chunk.number, received: true };
  }

  /** ?do=upload_chunk (0-based chunk_number): where to POST the chunk's raw bytes, or 416 when it is already in. */
  async link(actor: Actor, uuid: string, body: Record<string, unknown>): Promise<{ link: string }> {
    if (body.chunk_number === undefined) throw errors.required('chunk_number');
    if (body.chunk_size === undefined) throw errors.required('chunk_size');
    const number = readInt(body.chunk_number, 'chunk_number', { min: 0 }) + 1;
    const size = readInt(body.chunk_size, 'chunk_size', { min: 1, max: MAX_CHUNK_SIZE });
    const d = await this.ownDrive(actor, uuid);
    await this.locate(d, { number, size });
    if (await this.received(uuid, number)) throw errors.chunkUploaded(number - 1);
    if (!this.uploading(d)) throw errors.permission(`Drive ${uuid} is not being uploaded (status "${d.status}")`);
    return { link: `${API}/drives/${uuid}/upload/?resumableChunkNumber=${number}&resumableChunkSize=${size}` };
  }

  /**
   * POST /drives/{uuid}/upload/: writes one chunk (a Buffer from a multipart body, or a raw stream of `declared`
   * bytes) at its offset. A chunk already in is not written again. Answers the drive.
   */
  async write(actor: Actor, uuid: string, chunk: ChunkRef, data: Buffer | Readable, declared: number | null): Promise<Stored<DriveDoc>> {
    const d = await this.ownDrive(actor, uuid);
    const at = await this.locate(d, chunk);
    const length = Buffer.isBuffer(data) ? data.length : declared;
    if (length !== null && length !== at.length) throw errors.invalid('file', `Chunk ${chunk.number} is ${at.length} bytes, not ${length}`);
    if (await this.received(uuid, chunk.number)) return d;
    if (!this.uploading(d)) throw errors.permission(`Drive ${uuid} is not being uploaded (status "${d.status}")`);
    // First writer fixes the chunk size, so that no two chunk sizes ever write over each other's ranges.
    if ((await this.recordChunk(uuid, 0, chunk.size)) !== chunk.size)
      throw errors.invalid('resumableChunkSize', `This upload's chunks are of another size than ${chunk.size} bytes`);
    try {
      if (!(await this.svc.storage.writeChunk(uuid, at.offset, data, at.length))) {
        // The .part is gone: the upload completed, or the drive was deleted meanwhile.
        const now = await this.svc.store.drives.get(uuid);
        if (!now) throw errors.notFound('Drive');
        return now;
      }
    } catch (e) {
      // A failed first chunk leaves the chunk size open again.
      const chunks = this.svc.store.uploadChunks;
      if ((await chunks.received(uuid)) === 0) await chunks.forget(uuid);
      if (e instanceof ChunkLengthError) throw errors.invalid('file', e.message);
      if (e instanceof ApiError || !(e as NodeJS.ErrnoException).code) throw e;
      // The storage refused the bytes (full, read-only, not mounted): the upload stays, and the chunk may be sent again.
      const message = `Chunk ${chunk.number} of the upload failed: ${storageFailure(e)}; send it again once the storage is back`;
      await this.svc.storageFailed('upload', uuid, d.owner, message);
      throw errors.storageFailed(message, storageIsFull(e));
    }
    await this.recordChunk(uuid, chunk.number, chunk.size);
    await this.completeIfWhole(d);
    return (await this.svc.store.drives.get(uuid)) ?? d;
  }

  /**
   * Records a chunk only while its drive exists: the drive's row is locked in the same transaction, and a drive's
   * delete removes its row before its chunks (svc.deleteDrive), so a chunk landing as its drive is deleted either
   * commits first (and goes with the drive) or finds no drive (404). No row outlives its drive. Returns the upload's
   * chunk size as fixed then (read with the drive locked, so never a size its delete has just removed).
   */
  private async recordChunk(uuid: string, chunkNumber: number, chunkSize: number): Promise<number | null> {
    const store = this.svc.store;
    const found = await store.transaction(async (trx) => {
      if (!(await store.drives.lock([uuid], trx)).length) return null;
      await store.uploadChunks.record(uuid, chunkNumber, chunkSize, trx);
      return { fixed: await store.uploadChunks.fixedSize(uuid, trx) };
    });
    if (!found) throw errors.notFound('Drive');
    return found.fixed;
  }

  /** The drive is whole when every chunk of the fixed size is in: then its image takes its place. */
  private async completeIfWhole(d: Stored<DriveDoc>): Promise<void> {
    const size = await this.svc.store.uploadChunks.fixedSize(d.uuid);
    if (size === null) return;
    if ((await this.svc.store.uploadChunks.received(d.uuid)) < chunkExtent(d.doc.size, size, 1).count) return;
    await this.svc.storage.completeResumable(d.uuid);
  }
}
