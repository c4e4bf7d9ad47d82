import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid } from '../domain/ids.ts';
import { readMeta, readString } from '../domain/input.ts';
import { ownerRef, readRef, readRefList, ref } from '../domain/refs.ts';
import { spacedMicros } from '../domain/timestamps.ts';
import { applyDriveInput, type DriveDoc } from '../domain/drive-definition.ts';
import { cloneName } from '../domain/clone-naming.ts';
import { allocateRaw, allocatedBytes, copyImage, ensureDir, findImage, imagePath, removeImages } from '../storage/images.ts';
import type { ListQuery, Stored } from '../store/documents.ts';
import type { SnapshotDoc } from '../store/index.ts';
import type { Actor } from './servers.ts';
import type { Db } from '../store/schema.ts';

/** Drive statuses whose bytes are complete enough to snapshot. */
const SNAPSHOTTABLE = ['unmounted', 'mounted', 'cloning_src'];
const pad = (n: number) => String(n).padStart(2, '0');

/** `{drive_uuid}__YYYY-MM-DD__HH_MM_SS`, CloudSigma's name for an unnamed snapshot. */
export function defaultSnapshotName(drive: string, d = new Date()): string {
  return `${drive}__${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}__${pad(d.getUTCHours())}_${pad(d.getUTCMinutes())}_${pad(d.getUTCSeconds())}`;
}

/**
 * Snapshots: a point-in-time copy of a drive's image (copy-on-write where the file system allows), kept beside the
 * drive images under the snapshot's uuid, so that cloning one into a new drive is an ordinary drive clone.
 */
export class SnapshotCommands {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  async load(actor: Actor, uuid: string, trx?: Db): Promise<Stored<SnapshotDoc>> {
    const s = await this.store.snapshots.get(uuid, trx);
    if (!s || !(await this.svc.access.canSee(actor, 'snapshots', s, trx))) throw errors.notFound('Snapshot');
    return s;
  }

  async list(actor: Actor, q: ListQuery) {
    return this.store.snapshots.list({ ...q, ...(await this.svc.access.listScope(actor, 'snapshots')) });
  }

  async render(actor: Actor, s: Stored<SnapshotDoc>) {
    const dec = await this.svc.decorations(actor, 'snapshots', s.uuid);
    // A grantee of a snapshot whose drive is not shared with him is not told the drive's uuid.
    const shownDrive =
      s.owner === actor.user || (await this.svc.acl.visibleAmong(actor, 'drives', await this.svc.acl.ownersOf('drives', [s.doc.drive]))).has(s.doc.drive);
    return {
      allocated_size: s.doc.allocated_size,
      drive: shownDrive ? ref('drives', s.doc.drive) : null,
      grantees: dec.grantees ?? [],
      meta: s.doc.meta,
      name: s.doc.name,
      owner: ownerRef(s.owner),
      permissions: dec.permissions ?? [],
      resource_uri: ref('snapshots', s.uuid).resource_uri,
      status: s.status,
      tags: dec.tags ?? s.doc.tags.map((t) => ref('tags', t)),
      timestamp: s.doc.timestamp,
      uuid: s.uuid,
    };
  }

  private async checkTags(actor: Actor, tags: string[], trx: Db) {
    const found = await this.store.tags.getMany(tags, trx);
    for (const t of tags) if (!found.some((x) => x.uuid === t && x.owner === actor.user)) throw errors.invalid('tags', `Tag ${t} does not exist`);
  }

  async create(actor: Actor, bodies: Record<string, unknown>[]): Promise<Stored<SnapshotDoc>[]> {
    const caps = this.svc.capabilities.snapshots ?? { max: 700, max_per_drive: 90 };
    const made = await this.store.transaction(async (trx) => {
      const uuids: string[] = [];
      for (const b of bodies) {
        if (b.drive === undefined || b.drive === null) throw errors.required('drive');
        const driveUuid = readRef(b.drive, 'drive');
        const d = await this.store.drives.get(driveUuid, trx);
        if (!d || d.owner !== actor.user) throw errors.invalid('drive', `Drive ${driveUuid} does not exist`);
        if (d.doc.storage_type === 'local_nvme') throw errors.permission('Ephemeral drives cannot be snapshotted', 'drive');
        if (!SNAPSHOTTABLE.includes(d.status)) throw errors.wrongState(`Cannot snapshot drive in state "${d.status}"`, 'drive');
        if ((await this.store.snapshotCount({ drive: driveUuid }, trx)) >= caps.max_per_drive)
          throw errors.permission(`A drive may have at most ${caps.max_per_drive} snapshots`, 'drive');
        if ((await this.store.snapshotCount({ owner: actor.user }, trx)) >= caps.max)
          throw errors.permission(`An account may have at most ${caps.max} snapshots`, 'drive');
        const now = new Date();
        const tags = b.tags === undefined ? [] : readRefList(b.tags, 'tags');
        await this.checkTags(actor, tags, trx);
        const doc: SnapshotDoc = {
          uuid: newUuid(),
          name: b.name === undefined || b.name === null ? defaultSnapshotName(driveUuid, now) : readString(b.name, 'name', { max: 1024 }),
          meta: b.meta === undefined ? {} : readMeta(b.meta, 'meta'),
          drive: driveUuid,
          tags,
          timestamp: spacedMicros(now),
          allocated_size: null,
          source: structuredClone(d.doc),
        };
        await this.store.snapshots.insert(actor.user, doc, 'creating', trx);
        await this.store.snapshots.setTags(doc.uuid, tags, trx);
        uuids.push(doc.uuid);
      }
      return this.store.snapshots.getMany(uuids, trx);
    });
    for (const s of made) {
      this.svc.publish('snapshots', s.uuid, actor.user, 'created');
      this.svc.publish('drives', s.doc.drive, actor.user, 'updated');
    }
    // The copy is taken after the answer: the snapshot shows `creating` until it exists.
    for (const s of made) void this.copyBytes(s);
    return made;
  }

  private async copyBytes(s: Stored<SnapshotDoc>): Promise<void> {
    const dataDir = this.svc.storage.dir;
    const target = imagePath(dataDir, s.uuid);
    try {
      await ensureDir(dataDir);
      const src = findImage(dataDir, s.doc.drive);
      if (src) await copyImage(src, target, Number(s.doc.source.size));
      else await allocateRaw(target, Number(s.doc.source.size));
      const cur = await this.store.snapshots.get(s.uuid);
      if (!cur) return void (await removeImages(dataDir, s.uuid));
      cur.doc.allocated_size = allocatedBytes(target);
      await this.store.snapshots.update(cur.doc, { status: 'available', expectedStatus: ['creating'] });
    } catch (e) {
      this.svc.log.error({ err: e, snapshot: s.uuid }, 'taking a snapshot failed');
      await removeImages(dataDir, s.uuid).catch(() => {});
      await this.store.snapshots.delete(s.uuid).catch(() => false);
    }
    this.svc.publish('snapshots', s.uuid, s.owner, 'updated');
  }

  /** name, meta and tags change; the drive and everything else are read-only. */
  async update(actor: Actor, uuid: string, body: Record<string, unknown>): Promise<Stored<SnapshotDoc>> {
    await this.store.transaction(async (trx) => {
      const s = await this.load(actor, uuid, trx);
      if (s.owner !== actor.user && !(await this.svc.access.canEdit(actor, 'snapshots', s, trx))) throw errors.permission('You may not edit this snapshot');
      const doc = structuredClone(s.doc);
      if (body.name !== undefined) doc.name = body.name === null ? defaultSnapshotName(doc.drive) : readString(body.name, 'name', { max: 1024 });
      if (body.meta !== undefined) doc.meta = readMeta(body.meta, 'meta');
      // A grantee sees no tags and cannot set them: the owner's tags (which may be what shares it) stay.
      if (body.tags !== undefined && s.owner === actor.user) {
        doc.tags = readRefList(body.tags, 'tags');
        await this.checkTags(actor, doc.tags, trx);
        await this.store.snapshots.setTags(uuid, doc.tags, trx);
      }
      await this.store.snapshots.update(doc, {}, trx);
    });
    const done = (await this.store.snapshots.get(uuid))!;
    this.svc.publish('snapshots', uuid, done.owner, 'updated', actor);
    return done;
  }

  async delete(actor: Actor, uuids: string[]): Promise<void> {
    const gone = await this.store.transaction(async (trx) => {
      const out: Array<Stored<SnapshotDoc>> = [];
      for (const u of [...new Set(uuids)]) {
        const s = await this.load(actor, u, trx);
        if (s.owner !== actor.user && !(await this.svc.access.canAct(actor, 'snapshots', s, 'delete', trx)))
          throw errors.permission('You may not delete this snapshot');
        out.push(s);
      }
      for (const s of out) await this.store.snapshots.delete(s.uuid, trx);
      return out;
    });
    for (const s of gone) {
      await removeImages(this.svc.storage.dir, s.uuid);
      this.svc.publish('snapshots', s.uuid, s.owner, 'deleted', actor);
      this.svc.publish('drives', s.doc.drive, s.owner, 'updated', actor);
    }
  }

  /** Snapshots die with their drive. */
  async deleteForDrives(driveUuids: string[]): Promise<void> {
    if (!driveUuids.length) return;
    for (const uuid of await this.store.snapshots.ofDrives(driveUuids)) {
      await this.store.snapshots.delete(uuid);
      await removeImages(this.svc.storage.dir, uuid);
    }
  }

  /** A new drive with the snapshot's content (status cloning_dst until copied); answers the drive. */
  async clone(actor: Actor, uuid: string, body: Record<string, unknown>): Promise<string> {
    const dst = await this.store.transaction(async (trx) => {
      const s = await this.load(actor, uuid, trx);
      if (s.owner !== actor.user && !(await this.svc.access.canAct(actor, 'snapshots', s, 'clone', trx)))
        throw errors.permission('You may not clone this snapshot');
      if (s.status !== 'available') throw errors.wrongState(`Cannot clone snapshot in state "${s.status}"`);
      const base = structuredClone(s.doc.source) as DriveDoc;
      base.uuid = newUuid();
      base.tags = [];
      delete base.clone_of;
      delete base.resize_to;
      delete base.delete_with_last_server;
      const name = body.name !== undefined && body.name !== null ? body.name : await cloneName(this.svc, actor.user, s.doc.name, 'drives', trx);
      const allowed: Record<string, unknown> = { name };
      for (const k of ['media', 'affinities', 'meta', 'allow_multimount']) if (body[k] !== undefined) allowed[k] = body[k];
      const doc = applyDriveInput(base, allowed, this.svc.capabilities);
      doc.clone_of = s.uuid;
      await this.store.drives.insert(actor.user, doc, 'cloning_dst', trx);
      await this.svc.jobs.start(
        {
          owner: actor.user,
          operation: 'drive_clone',
          resources: [
            ['snapshots', s.uuid],
            ['drives', doc.uuid],
          ],
        },
        trx,
      );
      return doc.uuid;
    });
    this.svc.publish('drives', dst, actor.user, 'created');
    void this.svc.cloneDriveBytes([dst]);
    return dst;
  }
}
