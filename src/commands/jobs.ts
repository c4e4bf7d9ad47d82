import { isoMicros, newUuid } from '../domain/ids.ts';
import { ref, type Ref } from '../domain/refs.ts';
import type { Stored } from '../store/documents.ts';
import type { JobDoc, Store } from '../store/index.ts';
import type { Db } from '../store/schema.ts';

/** CloudSigma keeps job history for 3 days; older jobs answer 404. */
export const JOB_RETENTION_MS = 3 * 24 * 3600 * 1000;

export type JobState = 'started' | 'success' | 'failed';

export interface JobStart {
  owner: string;
  operation: string;
  /** [resource type, uuid] pairs: source first, then destination */
  resources: Array<[string, string]>;
  parent?: string;
}

type Publish = (resourceType: string, uuid: string, owner: string | null, action: string) => void;

/**
 * Background jobs (drive_clone, server_clone with drive_clone children, ...). Any command doing long work calls
 * start() before, progress() during and finish() after; servers and drives show the jobs still running on them.
 */
export class Jobs {
  constructor(
    private readonly store: Store,
    private readonly publish: Publish,
  ) {}

  private cutoff(): string {
    return new Date(Date.now() - JOB_RETENTION_MS).toISOString();
  }

  async start(job: JobStart, trx: Db = this.store.db): Promise<string> {
    const now = isoMicros(new Date());
    const doc: JobDoc = {
      uuid: newUuid(),
      operation: job.operation,
      resources: job.resources.map(([t, u]) => ref(t, u).resource_uri),
      data: { progress: 0 },
      created: now,
      last_modified: now,
    };
    await this.store.jobs.insert(job.owner, doc, 'started', trx);
    if (job.parent) await this.store.jobs.setColumns(doc.uuid, { parent: job.parent }, trx);
    await this.store.jobs.linkResources(
      doc.uuid,
      job.resources.map(([, u]) => u),
      trx,
    );
    this.publish('jobs', doc.uuid, job.owner, 'created');
    void this.prune().catch(() => {});
    return doc.uuid;
  }

  /** Moves a running job's progress forward (never back), and its parent's to the mean of its children. */
  async progress(uuid: string, progress: number): Promise<void> {
    const p = Math.max(0, Math.min(100, Math.floor(progress)));
    const moved = await this.write(uuid, (d) => {
      if (p <= Number(d.data.progress ?? 0)) return false;
      d.data.progress = p;
    });
    if (!moved) return;
    const parent = await this.store.jobs.parentOf(uuid);
    if (!parent) return;
    const kids = await this.children(parent);
    if (kids.length)
      await this.progress(parent, kids.reduce((sum, k) => sum + (k.status === 'started' ? Number(k.doc.data.progress ?? 0) : 100), 0) / kids.length);
  }

  /** The byte copy into a drive being cloned has got this far (0..1): its drive_clone job shows it, below 100 until done. */
  async copyProgress(driveUuid: string, fraction: number): Promise<void> {
    for (const r of await this.runningOn(driveUuid)) {
      const j = await this.store.jobs.get(r.uuid);
      if (j?.doc.operation === 'drive_clone' && j.doc.resources[1]?.endsWith(`/${driveUuid}/`)) await this.progress(j.uuid, Math.min(99, fraction * 100));
    }
  }

  /** Ends a running job (a finished one stays as it ended), then its parent if that was the last running child. */
  async finish(uuid: string, state: Exclude<JobState, 'started'> = 'success', data: Record<string, unknown> = {}): Promise<void> {
    await this.write(
      uuid,
      (d) => {
        Object.assign(d.data, data);
        if (state === 'success') d.data.progress = 100;
      },
      state,
    );
    const parent = await this.store.jobs.parentOf(uuid);
    if (parent) await this.settleParent(parent);
  }

  /** A parent job ends when its children have: failed if any failed, with the first failed child's error. */
  async settleParent(uuid: string): Promise<void> {
    const kids = await this.children(uuid);
    if (kids.some((k) => k.status === 'started')) return;
    const failed = kids.find((k) => k.status === 'failed');
    const error = failed?.doc.data.error_message === undefined ? {} : { error_message: failed.doc.data.error_message, error_type: failed.doc.data.error_type };
    await this.finish(uuid, failed ? 'failed' : 'success', error);
  }

  /**
   * The drive_clone jobs copying into this drive end failed, saying why in `data` as the API's error array does
   * (error_message, error_type), since CloudSigma's job objects have no error field of their own.
   */
  async failDriveClone(driveUuid: string, message: string): Promise<void> {
    for (const r of await this.runningOn(driveUuid)) {
      const j = await this.store.jobs.get(r.uuid);
      if (j?.doc.operation === 'drive_clone' && j.doc.resources[1]?.endsWith(`/${driveUuid}/`))
        await this.finish(j.uuid, 'failed', { error_message: message, error_type: 'backend' });
    }
  }

  /** Attaches a job as a child of another (a drive_clone under its server_clone). */
  async adopt(parent: string, child: string): Promise<void> {
    await this.store.jobs.setColumns(child, { parent });
  }

  /** Ends the drive_clone jobs whose destination drive has left cloning_dst (done) or disappeared (failed). */
  async settleDriveClone(driveUuid: string): Promise<void> {
    for (const ref of await this.runningOn(driveUuid)) {
      const j = await this.store.jobs.get(ref.uuid);
      if (!j || j.doc.operation !== 'drive_clone' || !j.doc.resources[1]?.endsWith(`/${driveUuid}/`)) continue;
      const d = await this.store.drives.get(driveUuid);
      if (!d) await this.finish(j.uuid, 'failed');
      else if (d.status !== 'cloning_dst') await this.finish(j.uuid, 'success');
    }
  }

  /** Changes a running job (`change` returning false leaves it as it is); whether it was written. */
  private async write(uuid: string, change: (d: JobDoc) => void | false, status?: JobState): Promise<boolean> {
    for (let i = 0; i < 5; i++) {
      const j = await this.store.jobs.get(uuid);
      if (!j || j.status !== 'started') return false;
      if (change(j.doc) === false) return false;
      j.doc.last_modified = isoMicros(new Date());
      if (await this.store.jobs.update(j.doc, { expectedVersion: j.version, ...(status ? { status } : {}) })) {
        this.publish('jobs', uuid, j.owner, status ?? 'progress');
        return true;
      }
    }
    return false;
  }

  /** A job of this owner, unless it is older than the retention period. */
  async get(owner: string, uuid: string): Promise<Stored<JobDoc> | undefined> {
    const j = await this.store.jobs.get(uuid);
    if (!j || j.owner !== owner || String(j.row.created_at) < this.cutoff()) return undefined;
    return j;
  }

  async children(uuid: string): Promise<Stored<JobDoc>[]> {
    return this.store.jobs.getMany(await this.store.jobs.childrenOf(uuid));
  }

  async render(j: Stored<JobDoc>): Promise<Record<string, unknown>> {
    const children = [];
    for (const c of await this.children(j.uuid)) children.push(await this.render(c));
    return {
      children,
      created: j.doc.created,
      data: j.doc.data,
      last_modified: j.doc.last_modified,
      operation: j.doc.operation,
      resource_uri: ref('jobs', j.uuid).resource_uri,
      resources: j.doc.resources,
      state: j.status,
      uuid: j.uuid,
    };
  }

  /** runningOn for many resources in one query (lists). */
  async runningOnMany(resourceUuids: string[]): Promise<Map<string, Ref[]>> {
    const out = new Map<string, Ref[]>();
    for (const r of await this.store.jobs.startedOn(resourceUuids)) out.set(r.resource_uuid, [...(out.get(r.resource_uuid) ?? []), ref('jobs', r.uuid)]);
    return out;
  }

  /** Jobs still running on a resource, as references. */
  async runningOn(resourceUuid: string, opts: { finishedToo?: boolean } = {}): Promise<Ref[]> {
    return (await this.store.jobs.workingOn(resourceUuid, opts)).map((u) => ref('jobs', u));
  }

  get retentionCutoff(): string {
    return this.cutoff();
  }

  /** Forgets jobs older than the retention period. */
  async prune(): Promise<void> {
    await this.store.jobs.forgetCreatedBefore(this.cutoff());
  }
}
