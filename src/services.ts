import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { loadCapabilities, type Capabilities } from './domain/capabilities.ts';
import type { CloneNaming } from './domain/clone-naming.ts';
import type { ServerDef } from './domain/server-definition.ts';
import { ref } from './domain/refs.ts';
import { EventBus } from './events.ts';
import type { Store } from './store/index.ts';
import type { Stored } from './store/documents.ts';
import type { ComputeNode } from './compute/node.ts';
import type { Actor } from './commands/servers.ts';
import { DriveStorage } from './storage/drive-storage.ts';
import { Jobs } from './commands/jobs.ts';
import { AclPolicy, type GranteeView } from './commands/access.ts';
import { SnapshotCommands } from './commands/snapshots.ts';
import { AuditLog } from './commands/audit-log.ts';
import type { Db, DocTableName } from './store/schema.ts';

/** What an access check reads of an object: a Stored row, or the uuid and owner an event names. */
export type Owned = { uuid: string; owner: string | null };

/** Who may see and touch what. The owner always may; ACLs (when granted) widen it. */
export interface AccessPolicy {
  // Inside a transaction pass it as `trx`: SQLite has one connection, and a query outside it would wait forever.
  canSee(actor: Actor, kind: string, obj: Owned, trx?: Db): Promise<boolean>;
  canUse(actor: Actor, kind: string, obj: Owned, trx?: Db): Promise<boolean>;
  canEdit(actor: Actor, kind: string, obj: Owned, trx?: Db): Promise<boolean>;
  /** `action` (start, stop, open_vnc, clone...) picks the permission a grantee needs. */
  canAct(actor: Actor, kind: string, obj: Owned, action?: string, trx?: Db): Promise<boolean>;
  /** Restricts a list query to what the actor may see: their own objects plus `orUuids` shared with them; tag filters to the actor's tags. */
  listScope(actor: Actor, kind: string): Promise<{ owner?: string | null; uuids?: string[]; orUuids?: string[]; tagOwner?: string }>;
}

export const ownerOnly: AccessPolicy = {
  canSee: async (a, _k, o) => o.owner === a.user,
  canUse: async (a, _k, o) => o.owner === a.user,
  canEdit: async (a, _k, o) => o.owner === a.user,
  canAct: async (a, _k, o) => o.owner === a.user,
  listScope: async (a) => ({ owner: a.user, tagOwner: a.user }),
};

/** How an object of one resource type looks to an actor (as GET shows it), or null if they may not see it. */
export type Renderer = (actor: Actor, uuid: string) => Promise<unknown | null>;

export interface Decorations {
  jobs?: unknown[];
  grantees?: unknown[];
  permissions?: unknown[];
  snapshots?: unknown[];
  remote_snapshots?: unknown[];
  /** [] for a grantee: the owner's tags are the owner's (set only then; the owner sees the object's own tags) */
  tags?: unknown[];
  /** Set for a grantee's view of a server: what of it he may be shown (AclPolicy.serverViews). */
  view?: GranteeView;
}

export type ReferenceCheck = (actor: Actor, def: ServerDef, previous: ServerDef | null, trx: Db) => Promise<void>;

/**
 * Everything the commands share: configuration, store, event bus, capabilities, and the hooks through which
 * resources that build on servers (storage, ACLs, jobs, networking) take part in server operations.
 */
export class Services {
  readonly capabilities: Capabilities;
  readonly bus: EventBus;
  compute: ComputeNode | null = null;
  access: AccessPolicy;
  /** ACL grants behind `access`, for the grantees/permissions decorations. */
  readonly acl: AclPolicy;
  /** Background jobs: start(), progress(), finish() around long work; shown on the resources they touch. */
  readonly jobs: Jobs;
  readonly serverReferenceChecks: ReferenceCheck[] = [];
  /** Renderers by resource type, for websocket notifications that carry the changed object. */
  readonly renderers = new Map<string, Renderer>();
  readonly storage: DriveStorage;
  /** The audit log of this process's changes; started by the composition root (core.ts). */
  readonly audit: AuditLog;

  constructor(
    readonly config: Config,
    readonly store: Store,
    readonly log: Logger,
  ) {
    this.capabilities = loadCapabilities(config.dataDir);
    this.bus = new EventBus(store.dialect);
    this.acl = new AclPolicy(store);
    this.access = this.acl;
    this.jobs = new Jobs(store, (t, u, o, a) => this.publish(t, u, o, a));
    this.storage = new DriveStorage(this);
    this.audit = new AuditLog(this);
    // A clone's job ends when its drive leaves cloning_dst, whoever moved it.
    this.bus.subscribe((e) => {
      if (e.resource_type === 'drives') void this.jobs.settleDriveClone(e.uuid).catch((err) => this.log.error({ err }, 'settling a clone job'));
    });
  }

  copyProgress(dstUuid: string, fraction: number): void {
    void this.jobs.copyProgress(dstUuid, fraction).catch((err) => this.log.warn({ err }, 'recording clone progress'));
  }

  /**
   * A drive's clone, resize or upload that failed in the drive storage: a clone's job ends failed with the reason, and
   * the event carries it, so the owner's audit log has an unsuccessful entry and websocket clients get a frame.
   */
  async storageFailed(what: 'clone' | 'resize' | 'upload', drive: string, owner: string | null, message: string): Promise<void> {
    if (what === 'clone') await this.jobs.failDriveClone(drive, message);
    this.bus.publish({ resource_type: 'drives', resource_uri: ref('drives', drive).resource_uri, uuid: drive, owner, action: what, error: message });
  }

  /** Announces a change; `by` is who asked for it when that may not be the owner (a grantee), for the audit log. */
  publish(resourceType: string, uuid: string, owner: string | null, action: string, by?: Actor): void {
    this.bus.publish({
      resource_type: resourceType,
      resource_uri: ref(resourceType, uuid).resource_uri,
      uuid,
      owner,
      action,
      ...(by ? { actor: by.user } : {}),
    });
  }

  /** decorations of objects whose owner is known, in a constant number of queries (lists, and every render). */
  async decorationsMany(
    actor: Actor,
    kind: string,
    objs: Array<{ uuid: string; owner: string | null; doc?: { tags?: unknown[] }; busy?: boolean }>,
  ): Promise<Map<string, Decorations>> {
    // Read alone, an object says whether a job works on it; only the others need the jobs query.
    const jobs = await this.onlyHisJobs(actor, await this.jobs.runningOnMany(objs.filter((o) => o.busy !== false).map((o) => o.uuid)));
    // ACLs share through tags: an object without any has no grantees, and needs no query.
    const mine = objs.filter((o) => o.owner !== null && o.owner === actor.user && (o.doc?.tags === undefined || o.doc.tags.length > 0)).map((o) => o.uuid);
    const grantees = await this.acl.granteesOfMany(kind, mine);
    const views = kind === 'servers' ? await this.acl.serverViews(actor, objs) : null;
    const out = new Map<string, Decorations>();
    for (const o of objs) {
      const d: Decorations = { jobs: jobs.get(o.uuid) ?? [], grantees: [], permissions: [] };
      if (kind === 'drives') {
        d.snapshots = await this.snapshotsOf(actor, o.uuid);
        d.remote_snapshots = await this.snapshotsOf(actor, o.uuid, 'remotesnapshots');
      }
      if (o.owner !== null && o.owner === actor.user) d.grantees = grantees.get(o.uuid) ?? [];
      else if (o.owner !== null) {
        d.permissions = [...(await this.acl.permissionsOf(actor, kind, o))].sort();
        d.tags = [];
        if (views) d.view = { ...views, vnc: d.permissions.includes('OPEN_VNC') };
      }
      out.set(o.uuid, d);
    }
    return out;
  }

  /** jobs, grantees and permissions shown on an object (and tags as a grantee sees them). */
  async decorations(actor: Actor, kind: string, uuid: string): Promise<Decorations> {
    const jobs = (await this.onlyHisJobs(actor, new Map([[uuid, await this.jobs.runningOn(uuid)]]))).get(uuid) ?? [];
    const snapshots =
      kind === 'drives' ? { snapshots: await this.snapshotsOf(actor, uuid), remote_snapshots: await this.snapshotsOf(actor, uuid, 'remotesnapshots') } : {};
    return { ...(await this.sharing(actor, kind, uuid)), jobs, ...snapshots };
  }

  /** A drive's snapshots that the actor may see (a grantee of the drive only those shared with him too). */
  /**
   * Jobs are their owner's: an object shows the viewer only his own (a grantee's clone of a shared drive runs a job
   * of his on the owner's drive, and the owner's jobs run on what she shares). One query, only when there are jobs.
   */
  private async onlyHisJobs<R extends { uuid: string }>(actor: Actor, byObject: Map<string, R[]>): Promise<Map<string, R[]>> {
    const ids = [...byObject.values()].flat().map((j) => j.uuid);
    if (ids.length === 0) return byObject;
    const his = new Set((await this.acl.ownersOf('jobs', ids)).filter((j) => j.owner === actor.user).map((j) => j.uuid));
    return new Map([...byObject].map(([k, list]) => [k, list.filter((j) => his.has(j.uuid))]));
  }

  private async snapshotsOf(actor: Actor, drive: string, kind: 'snapshots' | 'remotesnapshots' = 'snapshots') {
    const rows = await this.store.snapshotsOfDrive(kind, drive);
    const seen = await this.acl.visibleAmong(actor, kind, rows);
    return rows.filter((r) => seen.has(r.uuid)).map((r) => ref(kind, r.uuid));
  }

  /** grantees as the owner sees them, or the permissions a grantee holds. */
  private async sharing(actor: Actor, kind: string, uuid: string): Promise<{ grantees?: unknown[]; permissions?: unknown[]; tags?: unknown[] }> {
    let owner: string | null = null;
    try {
      const [row] = await this.store.ownersOf(kind as DocTableName, [uuid]);
      owner = row?.owner ?? null;
    } catch {
      return {};
    }
    if (owner === null) return { grantees: [], permissions: [] };
    if (owner === actor.user) return { grantees: await this.acl.granteesOf(kind, uuid), permissions: [] };
    return { grantees: [], permissions: [...(await this.acl.permissionsOf(actor, kind, { uuid, owner }))].sort(), tags: [] };
  }

  /** The profile's clone_naming; inside a transaction pass it, since SQLite has one connection. */
  async cloneNamingOf(user: string, trx?: Db): Promise<CloneNaming> {
    const row = await this.store.users.byUuid(user, trx);
    const p = (row?.data.profile ?? {}) as { clone_naming?: CloneNaming };
    return p.clone_naming ?? 'NONE';
  }

  /** Gives a new drive its bytes, then marks it unmounted. */
  allocateDrive(uuid: string, size: number): Promise<void> {
    return this.storage.allocate(uuid, size);
  }

  /** Starts copying the bytes of drives that clone records left in cloning_dst (called after their transaction). */
  async cloneDriveBytes(dstUuids: string[]): Promise<void> {
    await this.storage.runClones(dstUuids);
  }

  /** Deletes a drive record, detaching it from every server that has it. */
  async deleteDrive(uuid: string, trx: Db): Promise<void> {
    for (const server of await this.store.drives.attachedTo(uuid, trx)) {
      const s = await this.store.servers.get(server, trx);
      if (!s) continue;
      s.doc.drives = s.doc.drives.filter((d) => d.drive !== uuid);
      await this.store.servers.update(s.doc, {}, trx);
    }
    await this.store.drives.detachEverywhere(uuid, trx);
    // The row first: a chunk being recorded holds it locked, so its chunk row is in (and deleted) or never made.
    await this.store.drives.delete(uuid, trx);
    await this.store.uploadChunks.forget(uuid, trx);
  }

  /** Removes the bytes of deleted drives, once their records are gone. */
  async afterDriveDelete(uuids: string[]): Promise<void> {
    await this.storage.remove(uuids);
    await new SnapshotCommands(this).deleteForDrives(uuids);
  }

  /** A cloned server's cloned disks get their bytes once the clone is committed. */
  async afterClone(server: Stored<ServerDef>): Promise<void> {
    void this.cloneDriveBytes(server.doc.drives.map((d) => d.drive));
  }
}
