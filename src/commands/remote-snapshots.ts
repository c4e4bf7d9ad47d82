import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { newUuid } from '../domain/ids.ts';
import { readMeta, readString } from '../domain/input.ts';
import { ownerRef, readRef, readRefList, ref } from '../domain/refs.ts';
import { spacedMicros } from '../domain/timestamps.ts';
import { applyDriveInput, type DriveDoc } from '../domain/drive-definition.ts';
import { cloneName } from '../domain/clone-naming.ts';
import type { ListQuery, Stored } from '../store/documents.ts';
import type { RemoteSnapshotDoc } from '../store/index.ts';
import { defaultSnapshotName } from './snapshots.ts';
import type { Actor } from './servers.ts';
import type { Db } from '../store/schema.ts';

/** Drive statuses whose bytes are complete enough to copy. */
const COPYABLE = ['unmounted', 'mounted', 'cloning_src'];
const KIND = 'remotesnapshots';
/** The location a remote snapshot names when the client names none: this installation's id in /locations/. */
export const DEFAULT_REMOTE_LOCATION = 'OPENSIGMA';

/**
 * Remote snapshots: a full copy of a drive kept on other storage than the drives' (OPENSIGMA_REMOTE_SNAPSHOT_DIR),
 * so it survives the loss of the drive's storage and the deletion of the drive itself. Cloning one into a new drive
 * is an ordinary drive clone whose source is the copy.
 */
export class RemoteSnapshotCommands {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  async load(actor: Actor, uuid: string, trx?: Db): Promise<Stored<RemoteSnapshotDoc>> {
    const s = await this.store.remotesnapshots.get(uuid, trx);
    if (!s || !(await this.svc.access.canSee(actor, KIND, s, trx))) throw errors.notFound('Remote snapshot');
    return s;
  }

  async list(actor: Actor, q: ListQuery) {
    return this.store.remotesnapshots.list({ ...q, ...(await this.svc.access.listScope(actor, KIND)) });
  }

  async render(actor: Actor, s: Stored<RemoteSnapshotDoc>) {
    const dec = await this.svc.decorations(actor, KIND, s.uuid);
    const src = s.doc.source;
    return {
      allocated_size: s.doc.allocated_size,
      drive: ref('drives', s.doc.drive),
      drive_meta: { media: src.media, name: src.name, size: src.size, src_uuid: s.doc.drive, storage_type: src.storage_type },
      grantees: dec.grantees ?? [],
      last_state_change: s.doc.last_state_change,
      location: s.doc.location,
      meta: s.doc.meta,
      name: s.doc.name,
      owner: ownerRef(s.owner),
      permissions: dec.permissions ?? [],
      resource_uri: ref(KIND, s.uuid).resource_uri,
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

  private readLocation(v: unknown): string {
    if (v === undefined || v === null) return DEFAULT_REMOTE_LOCATION;
    return readString(v, 'location', { nonEmpty: true, max: 64 });
  }

  async create(actor: Actor, bodies: Record<string, unknown>[]): Promise<Stored<RemoteSnapshotDoc>[]> {
    const max = (this.svc.capabilities as { remote_snapshots?: { max?: number } }).remote_snapshots?.max ?? 600;
    const made = await this.store.transaction(async (trx) => {
      const uuids: string[] = [];
      for (const b of bodies) {
        if (b.drive === undefined || b.drive === null) throw errors.required('drive');
        const driveUuid = readRef(b.drive, 'drive');
        const d = await this.store.drives.get(driveUuid, trx);
        if (!d || d.owner !== actor.user) throw errors.invalid('drive', `Drive ${driveUuid} does not exist`);
        if (d.doc.storage_type === 'local_nvme') throw errors.permission('Ephemeral drives cannot be snapshotted', 'drive');
        if (!COPYABLE.includes(d.status)) throw errors.wrongState(`Cannot snapshot drive in state "${d.status}"`, 'drive');
        if ((await this.store.countOwned(KIND, actor.user, trx)) >= max)
          throw errors.permission(`An account may have at most ${max} remote snapshots`, 'drive');
        const now = new Date();
        const tags = b.tags === undefined || b.tags === null ? [] : readRefList(b.tags, 'tags');
        await this.checkTags(actor, tags, trx);
        const stamp = spacedMicros(now);
        const doc: RemoteSnapshotDoc = {
          uuid: newUuid(),
          name: b.name === undefined || b.name === null ? defaultSnapshotName(driveUuid, now) : readString(b.name, 'name', { max: 1024 }),
          meta: b.meta === undefined || b.meta === null ? {} : readMeta(b.meta, 'meta'),
          drive: driveUuid,
          tags,
          timestamp: stamp,
          last_state_change: stamp,
          location: this.readLocation(b.location),
          allocated_size: 0,
          source: structuredClone(d.doc) as unknown as Record<string, unknown>,
        };
        await this.store.remotesnapshots.insert(actor.user, doc, 'creating', trx);
        await this.store.remotesnapshots.setTags(doc.uuid, tags, trx);
        uuids.push(doc.uuid);
      }
      return this.store.remotesnapshots.getMany(uuids, trx);
    });
    for (const s of made) {
      this.svc.publish(KIND, s.uuid, actor.user, 'created');
      this.svc.publish('drives', s.doc.drive, actor.user, 'updated');
    }
    // The copy is taken after the answer: the snapshot shows `creating` until it is complete.
    for (const s of made) void this.svc.storage.copyToRemote(s.uuid);
    return made;
  }

  /** name, meta and tags change; drive, location and the rest are read-only (clients send the whole object back). */
  async update(actor: Actor, uuid: string, body: Record<string, unknown>): Promise<Stored<RemoteSnapshotDoc>> {
    await this.store.transaction(async (trx) => {
      const s = await this.load(actor, uuid, trx);
      if (s.owner !== actor.user && !(await this.svc.access.canEdit(actor, KIND, s, trx))) throw errors.permission('You may not edit this remote snapshot');
      const doc = structuredClone(s.doc);
      if (body.name !== undefined) doc.name = body.name === null ? defaultSnapshotName(doc.drive) : readString(body.name, 'name', { max: 1024 });
      if (body.meta !== undefined) doc.meta = body.meta === null ? {} : readMeta(body.meta, 'meta');
      if (body.tags !== undefined) {
        doc.tags = body.tags === null ? [] : readRefList(body.tags, 'tags');
        if (s.owner !== actor.user) throw errors.permission('Only the owner may change the tags of a remote snapshot', 'tags');
        await this.checkTags(actor, doc.tags, trx);
        await this.store.remotesnapshots.setTags(uuid, doc.tags, trx);
      }
      await this.store.remotesnapshots.update(doc, {}, trx);
    });
    this.svc.publish(KIND, uuid, actor.user, 'updated');
    return (await this.store.remotesnapshots.get(uuid))!;
  }

  async delete(actor: Actor, uuids: string[]): Promise<void> {
    const gone = await this.store.transaction(async (trx) => {
      const out: Array<Stored<RemoteSnapshotDoc>> = [];
      for (const u of [...new Set(uuids)]) {
        const s = await this.load(actor, u, trx);
        if (s.owner !== actor.user) throw errors.permission('Only the owner may delete a remote snapshot');
        out.push(s);
      }
      for (const s of out) await this.store.remotesnapshots.delete(s.uuid, trx);
      return out;
    });
    await this.svc.storage.removeRemote(gone.map((s) => s.uuid));
    for (const s of gone) {
      this.svc.publish(KIND, s.uuid, actor.user, 'deleted');
      this.svc.publish('drives', s.doc.drive, actor.user, 'updated');
    }
  }

  /** A new drive with the copy's content (status cloning_dst until copied); answers the drive. */
  async clone(actor: Actor, uuid: string, body: Record<string, unknown>): Promise<string> {
    const dst = await this.store.transaction(async (trx) => {
      const s = await this.load(actor, uuid, trx);
      if (s.owner !== actor.user && !(await this.svc.access.canAct(actor, KIND, s, 'clone', trx)))
        throw errors.permission('You may not clone this remote snapshot');
      if (s.status !== 'available') throw errors.wrongState(`Cannot clone remote snapshot in state "${s.status}"`);
      const base = structuredClone(s.doc.source) as unknown as DriveDoc;
      base.uuid = newUuid();
      base.tags = [];
      delete base.clone_of;
      delete base.resize_to;
      delete base.resumable;
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
            [KIND, s.uuid],
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
