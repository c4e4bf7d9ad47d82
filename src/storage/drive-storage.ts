import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';
import type { DriveDoc } from '../domain/drive-definition.ts';
import { spacedMicros } from '../domain/timestamps.ts';
import { allocateRaw, allocatedBytes, copyImage, ensureDir, findImage, growRaw, imagePath, partialPath, qcowPath, removeImages, run } from './images.ts';
import type { Db } from '../store/schema.ts';

/** Statuses during which something is being done to a drive's bytes; mounts don't change them. */
export const BUSY = ['creating', 'cloning_dst', 'cloning_src', 'resizing', 'uploading', 'deleting'];

export interface StorageHost {
  readonly store: Store;
  readonly log: Logger;
  readonly config: { dataDir: string; storageDir?: string; remoteSnapshotDir?: string };
  publish(resourceType: string, uuid: string, owner: string | null, action: string): void;
  /** How far the copy into a drive being cloned has got (0..1), a few times a second at most. */
  copyProgress?(dstUuid: string, fraction: number): void;
  /** A clone or resize failed after the API answered: its job, the audit log and websocket clients learn why. */
  storageFailed?(what: 'clone' | 'resize', drive: string, owner: string | null, message: string): Promise<void>;
}

/** Bytes a drive should have and the storage dir does not: lost, or the shared storage is not mounted on this node. */
export class MissingBytesError extends Error {}

/** Whether the storage failed for want of room (the answer is then 507, not 503). */
export const storageIsFull = (e: unknown): boolean => ['ENOSPC', 'EDQUOT'].includes((e as NodeJS.ErrnoException)?.code ?? '');

/** What went wrong with the drive storage, in words for the drive's owner (no paths of the operator's machines). */
export function storageFailure(e: unknown): string {
  if (e instanceof MissingBytesError) return e.message;
  const code = (e as NodeJS.ErrnoException)?.code;
  const said: Record<string, string> = {
    ENOSPC: 'the drive storage is full',
    EDQUOT: 'the drive storage quota is used up',
    EROFS: 'the drive storage is read-only',
    EACCES: 'the drive storage refused access (permission denied)',
    EPERM: 'the drive storage refused the operation (not permitted)',
    EIO: 'the drive storage reported an I/O error',
    ENOENT: 'a file of the drive storage is missing',
    ENOTCONN: 'the drive storage is not connected',
    ESTALE: 'the drive storage handle is stale (the shared file system went away)',
    ENOTDIR: 'the drive storage is not a directory',
  };
  if (code && said[code]) return said[code];
  if (code) return `the drive storage failed (${code})`;
  return (e as Error)?.message || String(e);
}

/** mounted / unmounted follows the attachment table, unless the drive is busy. */
export async function refreshDriveStatus(store: Store, driveUuid: string, trx: Db): Promise<void> {
  const d = await store.drives.get(driveUuid, trx);
  if (!d || d.owner === null || BUSY.includes(d.status)) return;
  const status = (await store.drives.isAttached(driveUuid, trx)) ? 'mounted' : 'unmounted';
  if (d.status !== status) await store.drives.transition(driveUuid, [d.status], status, {}, trx);
}

/**
 * The bytes behind drives: allocation after create, copies after clone, growth after resize, uploads and downloads,
 * and removal. Every long operation runs after the API has answered and ends by moving the drive out of its busy
 * status; a failure removes what was half written and puts the status back.
 */
export class DriveStorage {
  /** Work running after the API answered: awaited before the store closes. */
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(private readonly host: StorageHost) {}

  private track<T>(work: Promise<T>): Promise<T | undefined> {
    const p = work.catch((e) => {
      this.host.log.error({ err: e }, 'drive storage work failed');
      return undefined;
    });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  /** Waits for every copy, allocation and resize in progress (before shutting down). */
  async drain(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  private get store() {
    return this.host.store;
  }
  /** Where drive images live (OPENSIGMA_STORAGE_DIR): the same path on every node that shares it. */
  get dir(): string {
    return this.host.config.storageDir ?? path.join(this.host.config.dataDir, 'drives');
  }

  find(uuid: string) {
    return findImage(this.dir, uuid);
  }

  /** Where remote snapshots keep their bytes: meant to be other storage than the drives' (OPENSIGMA_REMOTE_SNAPSHOT_DIR). */
  get remoteDir(): string {
    return this.host.config.remoteSnapshotDir ?? path.join(this.host.config.dataDir, 'remote-snapshots');
  }

  remoteImage(uuid: string): string {
    return path.join(this.remoteDir, `${uuid}.img`);
  }

  /** The bytes a clone copies from: a drive's image, or a remote snapshot's copy. */
  private findSource(uuid: string): { path: string; format: 'raw' | 'qcow2' } | null {
    const own = this.find(uuid);
    if (own) return own;
    const remote = this.remoteImage(uuid);
    return fs.existsSync(remote) ? { path: remote, format: 'raw' } : null;
  }

  /** Copies a drive into the remote snapshot taken of it (status creating), then makes the snapshot available. */
  async copyToRemote(uuid: string): Promise<void> {
    await this.track(this.doCopyToRemote(uuid));
  }

  private async doCopyToRemote(uuid: string): Promise<void> {
    const s = await this.store.remotesnapshots.get(uuid);
    if (!s || s.status !== 'creating') return;
    const target = this.remoteImage(uuid);
    try {
      await fsp.mkdir(this.remoteDir, { recursive: true });
      const src = this.find(s.doc.drive);
      const size = Number(s.doc.source.size);
      if (src) await copyImage(src, target, size);
      else await allocateRaw(target, size); // a drive that never had bytes is all zeros
      const cur = await this.store.remotesnapshots.get(uuid);
      if (cur) {
        cur.doc.allocated_size = allocatedBytes(target);
        cur.doc.last_state_change = spacedMicros();
        const ok = await this.store.remotesnapshots.update(cur.doc, { status: 'available', expectedStatus: ['creating'] });
        if (ok) return this.host.publish('remotesnapshots', uuid, s.owner, 'updated');
      }
      // Deleted while being copied: nothing may stay behind.
      if (!(await this.store.remotesnapshots.get(uuid))) await removeRemote(target);
    } catch (e) {
      this.host.log.error({ err: e, remote_snapshot: uuid, drive: s.doc.drive }, 'taking a remote snapshot failed');
      await removeRemote(target).catch(() => {});
      await this.store.remotesnapshots.delete(uuid).catch(() => false);
      this.host.publish('remotesnapshots', uuid, s.owner, 'deleted');
    }
  }

  /** Removes the copies of deleted remote snapshots, once their records are gone. */
  async removeRemote(uuids: string[]): Promise<void> {
    for (const u of uuids)
      await removeRemote(this.remoteImage(u)).catch((e) => this.host.log.error({ err: e, remote_snapshot: u }, 'removing a remote snapshot failed'));
  }

  /** Gives a new drive its (sparse) image, then marks it unmounted. */
  async allocate(uuid: string, size: number): Promise<void> {
    await this.track(this.doAllocate(uuid, size));
  }

  private async doAllocate(uuid: string, size: number): Promise<void> {
    const file = imagePath(this.dir, uuid);
    try {
      await ensureDir(this.dir);
      await allocateRaw(file, size);
      if (await this.store.drives.transition(uuid, ['creating'], 'unmounted')) return this.changed(uuid);
      // Deleted while being created: nothing may stay behind.
      if (!(await this.store.drives.get(uuid))) await removeImages(this.dir, uuid);
    } catch (e) {
      this.host.log.error({ err: e, drive: uuid }, 'allocating a drive image failed');
      await removeImages(this.dir, uuid).catch(() => {});
      await this.store.drives.transition(uuid, ['creating'], 'unavailable').catch(() => false);
      await this.changed(uuid);
    }
  }

  /** Copies the bytes of every drive in cloning_dst among `uuids`; each finishes on its own. */
  async runClones(uuids: string[]): Promise<void> {
    await Promise.all(uuids.map((u) => this.track(this.runClone(u))));
  }

  private async runClone(dstUuid: string): Promise<void> {
    const dst = await this.store.drives.get(dstUuid);
    if (!dst || dst.status !== 'cloning_dst' || !dst.doc.clone_of) return;
    const srcUuid = dst.doc.clone_of;
    const target = imagePath(this.dir, dstUuid);
    try {
      await ensureDir(this.dir);
      const src = this.findSource(srcUuid);
      // Every drive has its bytes before it may be cloned: none means they are lost, never an empty copy.
      if (!src) throw new MissingBytesError(`the bytes of drive ${srcUuid} are not in the drive storage (lost, or the storage is not mounted)`);
      await copyImage(src, target, dst.doc.size, (f) => this.host.copyProgress?.(dstUuid, f));
      const done = await this.finish(dstUuid, ['cloning_dst'], (doc) => {
        delete doc.clone_of;
      });
      if (!done) await removeImages(this.dir, dstUuid);
    } catch (e) {
      this.host.log.error({ err: e, drive: dstUuid, source: srcUuid }, 'cloning a drive failed');
      await removeImages(this.dir, dstUuid).catch(() => {});
      await this.store.transaction(async (trx) => {
        const cur = await this.store.drives.get(dstUuid, trx);
        if (cur?.status === 'cloning_dst') await this.store.drives.delete(dstUuid, trx);
      });
      // The job ends once the drive is gone (a client reading it then finds no half drive), before the deletion is
      // announced: that announcement would end it too, without the reason.
      await this.host
        .storageFailed?.('clone', dstUuid, dst.owner, `Cloning drive ${srcUuid} failed: ${storageFailure(e)}; the clone was removed`)
        .catch((err) => this.host.log.error({ err }, 'recording a failed clone'));
      this.host.publish('drives', dstUuid, dst.owner, 'deleted');
    }
    await this.releaseSource(srcUuid);
  }

  /** The source of finished clones returns to mounted / unmounted once no other copy reads from it. */
  private async releaseSource(srcUuid: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const src = await this.store.drives.get(srcUuid, trx);
      if (!src || src.status !== 'cloning_src') return;
      const copying = await this.store.drives.withStatus(['cloning_dst'], trx);
      if (copying.some((c) => c.doc.clone_of === srcUuid)) return;
      const status = (await this.store.drives.isAttached(srcUuid, trx)) ? 'mounted' : 'unmounted';
      await this.store.drives.transition(srcUuid, ['cloning_src'], status, {}, trx);
    });
    await this.changed(srcUuid);
  }

  /** Grows a drive's image to the size its resize asked for, then records the size. */
  async resize(uuid: string): Promise<void> {
    await this.track(this.doResize(uuid));
  }

  private async doResize(uuid: string): Promise<void> {
    const d = await this.store.drives.get(uuid);
    if (!d || d.status !== 'resizing' || d.doc.resize_to === undefined) return;
    const size = d.doc.resize_to;
    try {
      const img = this.find(uuid);
      if (!img) throw new MissingBytesError(`the bytes of drive ${uuid} are not in the drive storage (lost, or the storage is not mounted)`);
      if (img.format === 'qcow2') await run('qemu-img', ['resize', '-q', img.path, String(size)]);
      else await growRaw(img.path, size);
      await this.finish(uuid, ['resizing'], (doc) => {
        doc.size = size;
        delete doc.resize_to;
      });
    } catch (e) {
      this.host.log.error({ err: e, drive: uuid }, 'resizing a drive failed');
      await this.finish(uuid, ['resizing'], (doc) => {
        delete doc.resize_to;
      });
      await this.host
        .storageFailed?.(
          'resize',
          uuid,
          d.owner,
          `Resizing drive ${uuid} to ${size} bytes failed: ${storageFailure(e)}; it keeps its size of ${d.doc.size} bytes`,
        )
        .catch((err) => this.host.log.error({ err }, 'recording a failed resize'));
    }
  }

  /** Ends a busy status: the document change and mounted/unmounted in one write. Returns false if the drive is gone. */
  private async finish(uuid: string, from: string[], change: (doc: DriveDoc) => void): Promise<boolean> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const ok = await this.store.transaction(async (trx) => {
        const d = await this.store.drives.get(uuid, trx);
        if (!d || !from.includes(d.status)) return 'gone' as const;
        change(d.doc);
        const status = (await this.store.drives.isAttached(uuid, trx)) ? 'mounted' : 'unmounted';
        return (await this.store.drives.update(d.doc, { status, expectedVersion: d.version }, trx)) ? ('done' as const) : ('retry' as const);
      });
      if (ok === 'gone') return false;
      if (ok === 'done') {
        await this.changed(uuid);
        return true;
      }
    }
    return false;
  }

  /**
   * Streams an upload into the drive's image (through a .part file renamed on completion). Any failure, a short
   * body or a client that goes away removes the file; the caller removes the record.
   */
  async receive(uuid: string, body: Readable, expected: number | null): Promise<number> {
    await ensureDir(this.dir);
    const tmp = partialPath(imagePath(this.dir, uuid));
    try {
      const received = await writeBatched(body, tmp);
      if (expected !== null && received !== expected) throw new Error(`upload ended after ${received} of ${expected} bytes`);
      return received;
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
  }

  /** Completes an upload: grows the received bytes to the drive's size and makes them the image. */
  async completeUpload(uuid: string, size: number): Promise<boolean> {
    const file = imagePath(this.dir, uuid);
    const tmp = partialPath(file);
    await growRaw(tmp, size);
    await fsp.rename(tmp, file);
    const ok = await this.finish(uuid, ['uploading'], (doc) => {
      doc.size = size;
    });
    if (!ok) await removeImages(this.dir, uuid);
    return ok;
  }

  /** A resumable upload's target: a sparse .part file of the full size, renamed into place when every chunk is in. */
  async startResumable(uuid: string, size: number): Promise<void> {
    await ensureDir(this.dir);
    const fh = await fsp.open(partialPath(imagePath(this.dir, uuid)), 'w');
    try {
      await fh.truncate(size);
    } finally {
      await fh.close();
    }
  }

  /**
   * Writes one chunk at its offset into the .part file: a buffer, or a stream that must bring exactly `length`
   * bytes. Returns false when the .part is gone (the upload was completed or the drive deleted meanwhile).
   */
  async writeChunk(uuid: string, offset: number, data: Buffer | Readable, length: number): Promise<boolean> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(partialPath(imagePath(this.dir, uuid)), 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    try {
      if (Buffer.isBuffer(data)) {
        await fh.write(data, 0, data.length, offset);
        return true;
      }
      let pos = offset;
      for await (const c of data as AsyncIterable<Buffer>) {
        if (pos + c.length > offset + length) throw new ChunkLengthError(`chunk is longer than ${length} bytes`);
        await fh.write(c, 0, c.length, pos);
        pos += c.length;
      }
      if (pos !== offset + length) throw new ChunkLengthError(`chunk ended after ${pos - offset} of ${length} bytes`);
      return true;
    } finally {
      await fh.close();
    }
  }

  /**
   * Every chunk is in: the .part becomes the image, then the drive leaves uploading (once, whoever calls first).
   * Returns whether the drive is now complete.
   */
  async completeResumable(uuid: string): Promise<boolean> {
    const file = imagePath(this.dir, uuid);
    try {
      await fsp.rename(partialPath(file), file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    await this.finish(uuid, ['uploading'], (doc) => {
      delete doc.resumable;
    });
    const d = await this.store.drives.get(uuid);
    if (!d) await removeImages(this.dir, uuid);
    return !!d && d.status !== 'uploading';
  }

  /** Removes the bytes of deleted drives, once their records are gone. Library images are never touched. */
  async remove(uuids: string[]): Promise<void> {
    for (const u of uuids) await removeImages(this.dir, u).catch((e) => this.host.log.error({ err: e, drive: u }, 'removing a drive image failed'));
  }

  /**
   * After a restart nothing is copying or receiving any more: a drive left in a busy status by this node is
   * finished or removed, so no half drive survives a crash. Only safe when this process is the only API node.
   */
  async recover(): Promise<void> {
    const stuck = await this.store.drives.withStatus(['creating', 'cloning_dst', 'uploading', 'resizing']);
    for (const d of stuck) {
      // A resumable upload waits for its client across restarts; its received chunks are on disk.
      if (d.status === 'uploading' && (await this.store.drives.get(d.uuid))?.doc.resumable) continue;
      if (d.status === 'creating') await this.allocate(d.uuid, (await this.store.drives.get(d.uuid))!.doc.size);
      else if (d.status === 'cloning_dst') await this.runClones([d.uuid]);
      else if (d.status === 'resizing') await this.resize(d.uuid);
      else {
        await removeImages(this.dir, d.uuid);
        await this.store.drives.delete(d.uuid);
      }
    }
    const sources = await this.store.drives.withStatus(['cloning_src']);
    for (const s of sources) await this.releaseSource(s.uuid);
    const copies = await this.store.remotesnapshots.withStatus(['creating']);
    for (const c of copies) await this.copyToRemote(c.uuid);
  }

  private async changed(uuid: string): Promise<void> {
    const d = await this.store.drives.get(uuid);
    if (d) this.host.publish('drives', uuid, d.owner, 'updated');
  }
}

async function removeRemote(file: string): Promise<void> {
  await fsp.rm(file, { force: true });
  await fsp.rm(partialPath(file), { force: true });
}

/** A raw chunk body that does not bring the length its chunk number calls for. */
export class ChunkLengthError extends Error {}

export { imagePath, qcowPath };

const BATCH = 1 << 20;

/**
 * Writes a stream to a new file in batches of 1 MiB, one batch written while the next fills: one system call and
 * one thread-pool hop per batch instead of per 64 KiB chunk. The body flows (no pause per chunk) until a full
 * batch waits for the one being written, so memory stays bounded however fast the client sends. Answers the number
 * of bytes written.
 */
async function writeBatched(body: Readable, file: string): Promise<number> {
  const fh = await fsp.open(file, 'w');
  let pos = 0;
  let writing: Promise<void> = Promise.resolve();
  try {
    await new Promise<void>((resolve, reject) => {
      let batch: Buffer[] = [];
      let size = 0;
      let failed = false;
      let batches = 0;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        body.destroy();
        reject(e);
      };
      const flush = () => {
        const bufs = batch;
        const at = pos;
        pos += size;
        batch = [];
        size = 0;
        const prev = writing;
        writing = prev.then(() => writeFully(fh, bufs, at));
        writing.catch(fail);
        return prev;
      };
      body.on('data', (chunk: Buffer) => {
        batch.push(chunk);
        size += chunk.length;
        if (size < BATCH) return;
        body.pause();
        // Go on reading once the batch before this one is written: one being written, one filling.
        flush().then(() => {
          if (++batches % 4 === 0) collectYoung();
          if (!failed) body.resume();
        }, fail);
      });
      body.on('end', () => {
        flush();
        writing.then(resolve, fail);
      });
      body.on('error', fail);
      body.on('close', () => {
        if (!body.readableEnded) fail(new Error('the upload was interrupted'));
      });
    });
    return pos;
  } finally {
    await writing.catch(() => {});
    await fh.close();
  }
}

async function writeFully(fh: fsp.FileHandle, bufs: Buffer[], pos: number): Promise<void> {
  while (bufs.length) {
    let { bytesWritten } = await fh.writev(bufs, pos);
    pos += bytesWritten;
    while (bufs.length && bytesWritten >= bufs[0]!.length) bytesWritten -= bufs.shift()!.length;
    if (bytesWritten) bufs[0] = bufs[0]!.subarray(bytesWritten);
  }
}

/**
 * Node hands each 64 KiB of a request body over in a new buffer whose memory returns only when the garbage collector
 * finds the buffer dead, which V8 does after about 64 MB of them. A young-generation collection every 4 MiB written
 * (half a millisecond: what survives is small) keeps an upload's memory to a few MiB.
 */
let young: ((opts: { type: 'minor' }) => void) | undefined;
function collectYoung(): void {
  if (!young) {
    v8.setFlagsFromString('--expose-gc');
    young = vm.runInNewContext('gc') as (opts: { type: 'minor' }) => void;
  }
  young({ type: 'minor' });
}
