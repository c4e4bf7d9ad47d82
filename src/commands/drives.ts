import type { Kysely } from 'kysely';
import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { applyDriveInput, type DriveDoc } from '../domain/drive-definition.ts';
import { ownerRef, ref } from '../domain/refs.ts';
import type { ListQuery, Stored } from '../store/documents.ts';
import type { Store } from '../store/index.ts';
import { cloneName } from '../domain/clone-naming.ts';
import type { Actor } from './servers.ts';

/** Statuses a drive is in while something is being done to its bytes; mounts don't change them. */
const BUSY = ['creating', 'cloning_dst', 'cloning_src', 'resizing', 'uploading', 'deleting'];

/** mounted / unmounted follows the attachment table, unless the drive is busy. */
export async function refreshDriveStatus(store: Store, driveUuid: string, trx: Kysely<any>): Promise<void> {
  const d = await store.drives.get(driveUuid, trx);
  if (!d || BUSY.includes(d.status)) return;
  const mounted = await trx.selectFrom('server_drives').select('server_uuid').where('drive_uuid', '=', driveUuid).executeTakeFirst();
  const status = mounted ? 'mounted' : 'unmounted';
  if (d.status !== status) await store.drives.transition(driveUuid, [d.status], status, {}, trx);
}

export async function mountedOn(store: Store, driveUuid: string, trx: Kysely<any> = store.db) {
  const rows = await trx.selectFrom('server_drives').select('server_uuid').where('drive_uuid', '=', driveUuid).execute();
  return rows.map((r: any) => ref('servers', r.server_uuid));
}

export function renderDrive(d: Stored<DriveDoc>, mounted: unknown[], extra: { jobs?: unknown[]; grantees?: unknown[]; permissions?: unknown[]; snapshots?: unknown[] } = {}) {
  const doc = d.doc;
  const library = d.owner === null;
  return {
    affinities: doc.affinities,
    allow_multimount: doc.allow_multimount,
    grantees: extra.grantees ?? [],
    jobs: extra.jobs ?? [],
    licenses: doc.licenses,
    media: doc.media,
    meta: doc.meta,
    mounted_on: mounted,
    name: doc.name,
    owner: ownerRef(d.owner),
    permissions: extra.permissions ?? [],
    resource_uri: ref('drives', doc.uuid).resource_uri,
    runtime: { is_snapshotable: library ? false : true, snapshots_allocated_size: 0, storage_type: doc.storage_type },
    size: doc.size,
    snapshots: extra.snapshots ?? [],
    status: d.status,
    storage_type: doc.storage_type,
    tags: doc.tags.map((t) => ref('tags', t)),
    uuid: doc.uuid,
  };
}

export function renderDriveShort(d: Stored<DriveDoc>) {
  return { owner: ownerRef(d.owner), resource_uri: ref('drives', d.uuid).resource_uri, status: d.status, uuid: d.uuid };
}

/**
 * Copies a drive record (and, through the storage hooks, its bytes) into the actor's account. Returns the new uuid.
 */
export async function cloneDriveRecord(
  svc: Services,
  actor: Actor,
  src: Stored<DriveDoc>,
  overrides: Record<string, unknown>,
  trx: Kysely<any>,
  avoid: string[] = [],
): Promise<string> {
  const doc: DriveDoc = structuredClone(src.doc);
  doc.uuid = crypto.randomUUID();
  doc.name = overrides.name !== undefined && overrides.name !== null ? String(overrides.name) : await cloneName(svc, actor.user, src.doc.name, 'drives');
  if (src.owner === null) {
    // A library image becomes the user's own drive; what described it moves to meta.
    const lib = doc.library ?? {};
    delete doc.library;
    for (const [k, v] of Object.entries(lib)) if (v !== null && v !== undefined && typeof v !== 'object') doc.meta[k] = String(v);
  }
  const merged = applyDriveInput(doc, { ...overrides, name: doc.name }, svc.capabilities);
  if (merged.size < src.doc.size) throw errors.invalid('size', 'A clone must be at least as large as its source');
  merged.tags = merged.tags.filter(() => src.owner === actor.user);
  await svc.store.drives.insert(actor.user, merged, 'unmounted', trx);
  await svc.store.drives.setTags(merged.uuid, merged.tags, trx);
  await svc.cloneDriveBytes(src.uuid, merged.uuid, merged.size, avoid);
  return merged.uuid;
}

export class DriveCommands {
  constructor(private readonly svc: Services) {}

  private get store() {
    return this.svc.store;
  }

  async load(actor: Actor, uuid: string, opts: { library?: boolean } = {}): Promise<Stored<DriveDoc>> {
    const d = await this.store.drives.get(uuid);
    if (!d) throw errors.notFound('Drive');
    if (d.owner === null && opts.library !== false) return d;
    if (!(await this.svc.access.canSee(actor, 'drives', d))) throw errors.notFound('Drive');
    return d;
  }

  async list(actor: Actor, q: ListQuery) {
    return this.store.drives.list({ ...q, ...(await this.svc.access.listScope(actor, 'drives')) });
  }

  async render(actor: Actor, d: Stored<DriveDoc>) {
    return renderDrive(d, await mountedOn(this.store, d.uuid), await this.svc.decorations(actor, 'drives', d.uuid));
  }

  async create(actor: Actor, bodies: Record<string, unknown>[]): Promise<Stored<DriveDoc>[]> {
    const docs = bodies.map((b) => applyDriveInput(null, b, this.svc.capabilities));
    const created = await this.store.transaction(async (trx) => {
      for (const doc of docs) {
        await this.checkTags(actor, doc.tags, trx);
        await this.store.drives.insert(actor.user, doc, 'creating', trx);
        await this.store.drives.setTags(doc.uuid, doc.tags, trx);
      }
      return this.store.drives.getMany(docs.map((d) => d.uuid), trx);
    });
    for (const d of created) this.svc.publish('drives', d.uuid, actor.user, 'created');
    // Bytes are allocated after the answer: the drive shows `creating` until its image exists.
    for (const d of created) void this.svc.allocateDrive(d.uuid, d.doc.size);
    return created;
  }

  private async checkTags(actor: Actor, tags: string[], trx: Kysely<any>) {
    const found = await this.store.tags.getMany(tags, trx);
    for (const t of tags) if (!found.some((x) => x.uuid === t && x.owner === actor.user)) throw errors.invalid('tags', `Tag ${t} does not exist`);
  }

  async delete(actor: Actor, uuid: string): Promise<void> {
    const d = await this.load(actor, uuid, { library: false });
    if (d.owner !== actor.user) throw errors.permission('Only the owner may delete a drive');
    const runningOn = await this.store.db
      .selectFrom('server_drives')
      .innerJoin('servers', 'servers.uuid', 'server_drives.server_uuid')
      .select('servers.uuid')
      .where('server_drives.drive_uuid', '=', uuid)
      .where('servers.status', '!=', 'stopped')
      .executeTakeFirst();
    if (runningOn) throw errors.permission(`Drive ${uuid} is mounted on a server that is not stopped`);
    if (['cloning_src', 'cloning_dst', 'resizing', 'uploading'].includes(d.status))
      throw errors.permission(`Cannot delete drive in state "${d.status}"`);
    await this.store.transaction((trx) => this.svc.deleteDrive(uuid, trx));
    this.svc.publish('drives', uuid, actor.user, 'deleted');
    await this.svc.afterDriveDelete([uuid]);
  }
}
