import type { Readable } from 'node:stream';
import type { Services } from '../services.ts';
import { ApiError, errors } from '../errors.ts';
import { applyDriveInput, checkSize, liveEditable, readStorageType, roundSize, storageLimits, type DriveDoc } from '../domain/drive-definition.ts';
import { ownerRef, readRefList, ref } from '../domain/refs.ts';
import { withoutTags } from '../domain/input.ts';
import type { ListQuery, Stored } from '../store/documents.ts';
import { cloneName } from '../domain/clone-naming.ts';
import { isoSeconds } from '../domain/ids.ts';
import { randomUuid } from '../domain/random.ts';
import { BUSY, refreshDriveStatus, storageFailure, storageIsFull } from '../storage/drive-storage.ts';
import { LIBRARY_FIELDS } from '../storage/library.ts';
import type { Actor } from './servers.ts';
import type { Db } from '../store/schema.ts';

export { refreshDriveStatus };

/** Statuses a clone may start from; anything else is still being made or changed. */
const CLONABLE = ['unmounted', 'mounted', 'cloning_src'];
/** Statuses in which a drive has no complete bytes yet. */
const INCOMPLETE = ['creating', 'cloning_dst', 'uploading', 'unavailable'];

/** Busy drives cannot be deleted, but an unfinished resumable upload can (its client may never come back). */
const undeletable = (d: Stored<DriveDoc>) =>
  ['cloning_src', 'cloning_dst', 'resizing', 'uploading'].includes(d.status) && !(d.status === 'uploading' && d.doc.resumable);

export async function mountedOn(store: Services['store'], driveUuid: string, trx: Db = store.db, onlyOwner?: string) {
  const rows = await store.drives.holders(driveUuid, onlyOwner === undefined ? {} : { owner: onlyOwner }, trx);
  return rows.map((r) => ref('servers', r.uuid));
}

type Extra = { jobs?: unknown[]; grantees?: unknown[]; permissions?: unknown[]; snapshots?: unknown[]; remote_snapshots?: unknown[]; tags?: unknown[] };

/** The full wire object of a drive (the 2025 shape, a superset of the older dumps). */
export function renderDrive(d: Stored<DriveDoc>, mounted: unknown[], extra: Extra = {}) {
  const doc = d.doc;
  const ephemeral = doc.storage_type === 'local_nvme';
  return {
    affinities: doc.affinities,
    allow_multimount: doc.allow_multimount,
    backup_scheduler: null,
    grantees: extra.grantees ?? [],
    iops: doc.iops ?? null,
    jobs: extra.jobs ?? [],
    licenses: doc.licenses,
    media: doc.media,
    meta: doc.meta,
    mounted_on: mounted,
    name: doc.name,
    owner: ownerRef(d.owner),
    permissions: extra.permissions ?? [],
    remote_snapshots: extra.remote_snapshots ?? [],
    resource_uri: ref('drives', doc.uuid).resource_uri,
    runtime: {
      is_downloadable: !ephemeral,
      is_ephemeral: ephemeral,
      is_snapshotable: !ephemeral,
      snapshots_allocated_size: 0,
      storage_type: doc.storage_type,
    },
    size: doc.size,
    snapshots: extra.snapshots ?? [],
    status: d.status,
    storage_type: doc.storage_type,
    tags: extra.tags ?? doc.tags.map((t) => ref('tags', t)),
    uuid: doc.uuid,
  };
}

export function renderDriveShort(d: Stored<DriveDoc>) {
  return { owner: ownerRef(d.owner), resource_uri: ref('drives', d.uuid).resource_uri, status: d.status, uuid: d.uuid };
}

/** A library drive as /libdrives/ shows it: drive fields plus its description, storage_type null. */
export function renderLibDrive(d: Stored<DriveDoc>, mounted: unknown[]) {
  const lib = (d.doc.library ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {
    affinities: d.doc.affinities,
    allow_multimount: d.doc.allow_multimount,
    jobs: [],
    licenses: d.doc.licenses,
    media: d.doc.media,
    meta: d.doc.meta,
    mounted_on: mounted,
    name: d.doc.name,
    owner: null,
    resource_uri: ref('libdrives', d.uuid).resource_uri,
    size: d.doc.size,
    status: d.status,
    storage_type: null,
    tags: [],
    uuid: d.uuid,
  };
  for (const k of LIBRARY_FIELDS) out[k] = lib[k] ?? (k === 'category' ? [] : k === 'favourite' || k === 'paid' ? false : null);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** What a library drive's description becomes in the meta of a clone (CloudSigma's key names). */
function libraryMeta(lib: Record<string, unknown>): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(lib)) {
    if (v === null || v === undefined) continue;
    const key = k === 'favourite' ? 'favorite' : k;
    meta[key] = Array.isArray(v) ? v.join(',') : String(v);
  }
  return meta;
}

/**
 * Copies a drive record into the actor's account, status cloning_dst, and marks an owned source cloning_src; the
 * bytes are copied by `svc.cloneDriveBytes` once the caller's transaction is committed. Returns the new uuid.
 */
export async function cloneDriveRecord(
  svc: Services,
  actor: Actor,
  src: Stored<DriveDoc>,
  overrides: Record<string, unknown>,
  trx: Db,
  _avoid: string[] = [],
): Promise<string> {
  const fresh = (await svc.store.drives.get(src.uuid, trx)) ?? src;
  if (fresh.owner !== null && !CLONABLE.includes(fresh.status)) throw errors.wrongState(`Cannot clone drive in state "${fresh.status}"`);
  const doc: DriveDoc = structuredClone(fresh.doc);
  delete doc.clone_of;
  delete doc.resize_to;
  delete doc.delete_with_last_server;
  doc.uuid = randomUuid();
  doc.name = overrides.name !== undefined && overrides.name !== null ? String(overrides.name) : await cloneName(svc, actor.user, fresh.doc.name, 'drives', trx);
  doc.tags = fresh.owner === actor.user ? doc.tags : [];
  if (fresh.owner === null) {
    // A library image becomes the user's own drive; what described it moves to meta.
    doc.meta = { ...doc.meta, ...libraryMeta(doc.library ?? {}) };
    delete doc.library;
  }
  // Tags in `overrides` must have been checked by the caller.
  const merged = applyDriveInput(doc, { ...overrides, name: doc.name }, svc.capabilities);
  if (merged.size < fresh.doc.size) throw errors.invalid('size', `A clone must be at least as large as its source (${fresh.doc.size} bytes)`);
  merged.clone_of = fresh.uuid;
  await svc.store.drives.insert(actor.user, merged, 'cloning_dst', trx);
  await svc.store.drives.setTags(merged.uuid, merged.tags, trx);
  if (fresh.owner !== null) await svc.store.drives.transition(fresh.uuid, CLONABLE, 'cloning_src', {}, trx);
  await svc.jobs.start(
    {
      owner: actor.user,
      operation: 'drive_clone',
      resources: [
        ['drives', fresh.uuid],
        ['drives', merged.uuid],
      ],
    },
    trx,
  );
  return merged.uuid;
}

/** `avoid=` lists drives or servers to keep apart from: one storage pool here, so it is read and otherwise ignored. */
function readAvoid(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => /^[0-9a-f-]{36}$/i.test(x));
}

export class DriveCommands {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  /** A drive the actor may see, or a library drive (owner null) unless `library: false`. */
  async load(actor: Actor, uuid: string, opts: { library?: boolean } = {}, trx?: Db): Promise<Stored<DriveDoc>> {
    const d = await this.store.drives.get(uuid, trx);
    if (!d) throw errors.notFound('Drive');
    if (d.owner === null) {
      if (opts.library === false) throw errors.permission('Library drives are read-only: clone one into your account to change it');
      return d;
    }
    if (!(await this.svc.access.canSee(actor, 'drives', d, trx))) throw errors.notFound('Drive');
    return d;
  }

  private async loadOwned(actor: Actor, uuid: string, what: 'edit' | 'act', trx?: Db): Promise<Stored<DriveDoc>> {
    const d = await this.load(actor, uuid, { library: false }, trx);
    const ok =
      d.owner === actor.user ||
      (what === 'edit' ? await this.svc.access.canEdit(actor, 'drives', d, trx) : await this.svc.access.canAct(actor, 'drives', d, undefined, trx));
    if (!ok) throw errors.permission(`You may not ${what === 'edit' ? 'edit' : 'operate'} this drive`);
    return d;
  }

  async list(actor: Actor, q: ListQuery) {
    return this.store.drives.list({ ...q, ...(await this.svc.access.listScope(actor, 'drives')) });
  }

  async render(actor: Actor, d: Stored<DriveDoc>) {
    const mounted = await this.mountedOnSeenBy(actor, d.uuid);
    return renderDrive(d, mounted, await this.svc.decorations(actor, 'drives', d.uuid));
  }

  /**
   * The servers holding a drive that the actor may see himself: a grantee (or the owner of a drive lent to others)
   * is not told the uuids of servers nobody shared with him.
   */
  private async mountedOnSeenBy(actor: Actor, drive: string) {
    const rows = await this.store.drives.holders(drive);
    const seen = await this.svc.acl.visibleAmong(actor, 'servers', rows);
    return rows.filter((r) => seen.has(r.uuid)).map((r) => ref('servers', r.uuid));
  }

  async create(actor: Actor, bodies: Record<string, unknown>[]): Promise<Stored<DriveDoc>[]> {
    const docs = bodies.map((b) => applyDriveInput(null, b, this.svc.capabilities));
    const created = await this.store.transaction(async (trx) => {
      for (const doc of docs) {
        await this.checkTags(actor, doc.tags, trx);
        await this.store.drives.insert(actor.user, doc, 'creating', trx);
        await this.store.drives.setTags(doc.uuid, doc.tags, trx);
      }
      return this.store.drives.getMany(
        docs.map((d) => d.uuid),
        trx,
      );
    });
    for (const d of created) this.svc.publish('drives', d.uuid, actor.user, 'created');
    // Bytes are allocated after the answer: the drive shows `creating` until its image exists.
    for (const d of created) void this.svc.allocateDrive(d.uuid, d.doc.size);
    return created;
  }

  private async checkTags(actor: Actor, tags: string[], trx: Db) {
    const found = await this.store.tags.getMany(tags, trx);
    for (const t of tags) if (!found.some((x) => x.uuid === t && x.owner === actor.user)) throw errors.invalid('tags', `Tag ${t} does not exist`);
  }

  /**
   * PUT: on a drive mounted on a running server only name, meta, tags and allow_multimount apply (the rest is ignored,
   * as CloudSigma does); `strict` (the resize action) refuses instead. A bigger size starts a resize: the answer shows
   * `resizing` and the old size until the image has grown.
   */
  async update(actor: Actor, uuid: string, body: Record<string, unknown>, opts: { strict?: boolean } = {}): Promise<Stored<DriveDoc>> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const d = await this.loadOwned(actor, uuid, 'edit');
      const live = await this.store.drives.onServerNotStopped(uuid);
      if (live && opts.strict) throw errors.permission(`Drive ${uuid} is mounted on a running server: stop the server to change the drive`);
      const given = live ? liveEditable(body) : body;
      // A grantee sees no tags and cannot set them: the owner's tags (which may be what shares the drive) stay.
      const input = d.owner === actor.user ? given : withoutTags(given);
      if (input.storage_type !== undefined && input.storage_type !== null && readStorageType(input.storage_type, this.svc.capabilities) !== d.doc.storage_type)
        throw errors.invalid('storage_type', 'The storage type of a drive cannot be changed: clone the drive with another storage_type');
      const next = applyDriveInput(d.doc, input, this.svc.capabilities);
      const grow = next.size !== d.doc.size;
      if (next.size < d.doc.size) throw errors.invalid('size', `A drive cannot be shrunk (from ${d.doc.size} to ${next.size} bytes)`);
      if (grow && BUSY.includes(d.status)) throw errors.wrongState(`Cannot resize drive in state "${d.status}"`);
      if (grow) {
        next.resize_to = next.size;
        next.size = d.doc.size;
      }
      const written = await this.store.transaction(async (trx) => {
        await this.checkTags(
          actor,
          next.tags.filter((t) => !d.doc.tags.includes(t)),
          trx,
        );
        if (grow && (await this.store.drives.onServerNotStopped(uuid, trx))) return null;
        if (grow && d.owner) await this.store.checkDriveBytes(d.owner, next.resize_to! - d.doc.size, trx);
        const opts2 = { expectedVersion: d.version, ...(grow ? { status: 'resizing' } : {}) };
        if (!(await this.store.drives.update(next, opts2, trx))) return null;
        await this.store.drives.setTags(uuid, next.tags, trx);
        return this.store.drives.get(uuid, trx);
      });
      if (written) {
        this.svc.publish('drives', uuid, d.owner, 'updated', actor);
        // The answer shows the drive as written (resizing, old size), however fast the image then grows.
        if (grow) void this.svc.storage.resize(uuid);
        return written;
      }
    }
    throw errors.concurrency();
  }

  /** Deletes drives after checking every one of them; all go or none. */
  async delete(actor: Actor, uuids: string[]): Promise<void> {
    const unique = [...new Set(uuids)];
    const owners = new Map<string, string | null>();
    for (const uuid of unique) {
      const d = await this.load(actor, uuid, { library: false });
      if (d.owner !== actor.user && !(await this.svc.access.canAct(actor, 'drives', d, 'delete'))) throw errors.permission('You may not delete this drive');
      owners.set(uuid, d.owner);
      if (await this.store.drives.onServerNotStopped(uuid)) throw errors.permission(`Drive ${uuid} is mounted on a server that is not stopped`);
      if (undeletable(d)) throw errors.wrongState(`Cannot delete drive in state "${d.status}"`);
    }
    await this.store.transaction(async (trx) => {
      for (const uuid of unique) {
        const d = await this.store.drives.get(uuid, trx);
        if (!d || undeletable(d) || (await this.store.drives.onServerNotStopped(uuid, trx))) throw errors.concurrency();
        await this.svc.deleteDrive(uuid, trx);
      }
    });
    for (const uuid of unique) this.svc.publish('drives', uuid, owners.get(uuid) ?? actor.user, 'deleted', actor);
    await this.svc.afterDriveDelete(unique);
  }

  async clone(actor: Actor, uuid: string, body: Record<string, unknown>, query: Record<string, string | undefined>, opts: { libraryOnly?: boolean } = {}) {
    const src = await this.load(actor, uuid);
    if (opts.libraryOnly && src.owner !== null) throw errors.notFound('Drive');
    if (src.owner !== null && src.owner !== actor.user && !(await this.svc.access.canAct(actor, 'drives', src, 'clone')))
      throw errors.permission('You may not clone this drive (it needs CLONE)');
    const dst = await this.store.transaction(async (trx) => {
      if (body.tags !== undefined && body.tags !== null) await this.checkTags(actor, readRefList(body.tags, 'tags'), trx);
      return cloneDriveRecord(this.svc, actor, src, body, trx, readAvoid(query.avoid));
    });
    this.svc.publish('drives', dst, actor.user, 'created');
    if (src.owner !== null) this.svc.publish('drives', src.uuid, src.owner, 'updated', actor);
    const answer = (await this.store.drives.get(dst))!;
    void this.svc.cloneDriveBytes([dst]);
    return answer;
  }

  async action(actor: Actor, uuid: string, action: string, query: Record<string, string | undefined>, body: Record<string, unknown>) {
    switch (action) {
      case 'clone':
        return this.clone(actor, uuid, body, query);
      case 'resize':
        return this.update(actor, uuid, body, { strict: true });
      default:
        throw errors.invalid('do', `Unknown action ${action}; available: clone, resize`);
    }
  }

  /**
   * A raw upload becomes a new drive: status uploading while the body streams to disk, then unmounted. Its size is
   * the body's, rounded up and grown to the storage type's minimum. A failed or interrupted upload leaves nothing.
   */
  async upload(actor: Actor, body: Readable, contentLength: number | null, filename?: string): Promise<string> {
    const storageType = String(this.svc.capabilities.default_storage_type ?? 'dssd');
    const lim = storageLimits(this.svc.capabilities, storageType)?.size;
    const sizeFor = (n: number) => Math.max(roundSize(Math.max(n, 1)), lim?.min ?? 0);
    if (contentLength !== null) checkSize(sizeFor(contentLength), storageType, this.svc.capabilities);
    const doc = applyDriveInput(
      null,
      {
        name: filename || `Upload_${isoSeconds(new Date()).slice(0, 19).replace('T', ' ')}`,
        media: 'disk',
        size: sizeFor(contentLength ?? 0),
        storage_type: storageType,
      },
      this.svc.capabilities,
    );
    await this.store.drives.insert(actor.user, doc, 'uploading');
    this.svc.publish('drives', doc.uuid, actor.user, 'created');
    try {
      const received = await this.svc.storage.receive(doc.uuid, body, contentLength);
      const size = sizeFor(received);
      checkSize(size, storageType, this.svc.capabilities);
      if (!(await this.svc.storage.completeUpload(doc.uuid, size))) throw errors.notFound('Drive');
      return doc.uuid;
    } catch (e) {
      await this.store.drives.delete(doc.uuid).catch(() => false);
      await this.svc.afterDriveDelete([doc.uuid]);
      this.svc.publish('drives', doc.uuid, actor.user, 'deleted');
      if (e instanceof ApiError || !(e as NodeJS.ErrnoException).code) throw e;
      // The storage failed (full, read-only, not mounted): the client and the audit log are told which way.
      const message = `The upload failed: ${storageFailure(e)}; no drive was made`;
      await this.svc.storageFailed('upload', doc.uuid, actor.user, message);
      throw errors.storageFailed(message, storageIsFull(e));
    }
  }

  /** The drive whose bytes a download streams: complete, raw, and the actor's (or a library cdrom). */
  async forDownload(actor: Actor, uuid: string): Promise<string> {
    const d = await this.load(actor, uuid);
    // A download is a copy of the bytes taken out of the cloud: it needs what a clone needs, CLONE.
    if (d.owner !== null && d.owner !== actor.user && !(await this.svc.access.canAct(actor, 'drives', d, 'clone')))
      throw errors.permission('You may not download this drive (it needs CLONE)');
    if (INCOMPLETE.includes(d.status) || d.status === 'resizing') throw errors.wrongState(`Cannot download drive in state "${d.status}"`);
    const img = this.svc.storage.find(uuid);
    if (!img) throw errors.permission(`Drive ${uuid} has no image`);
    if (img.format !== 'raw') throw errors.permission('This library drive is a qcow2 image: clone it into your account and download the clone (raw)');
    return img.path;
  }
}
