import type { Dialect } from './dialect/index.ts';
import { DocumentTable } from './documents.ts';
import type { JobDoc } from './index.ts';
import { Prepared } from './prepared.ts';
import type { Db } from './schema.ts';

/** Jobs, with job_resources (the resources each works on, which every rendering of a resource asks for) and their parent. */
export class JobTable extends DocumentTable<JobDoc> {
  constructor(dialect: Dialect) {
    super(dialect, 'jobs', 'jobs', () => ({}), new Set(['uuid', 'status', 'updated_at']));
  }

  /** Records the resources a new job works on, in the transaction that inserts it. */
  async linkResources(jobUuid: string, resourceUuids: string[], trx: Db = this.dialect.db): Promise<void> {
    const unique = [...new Set(resourceUuids)];
    if (unique.length)
      await trx
        .insertInto('job_resources')
        .values(unique.map((u) => ({ job_uuid: jobUuid, resource_uuid: u })))
        .execute();
  }

  /** The job this one is a child of, if any. */
  async parentOf(uuid: string, trx: Db = this.dialect.db): Promise<string | null> {
    return (await trx.selectFrom('jobs').select('parent').where('uuid', '=', uuid).executeTakeFirst())?.parent ?? null;
  }

  /** The children of a job, oldest first. */
  async childrenOf(uuid: string, trx: Db = this.dialect.db): Promise<string[]> {
    return (await trx.selectFrom('jobs').select('uuid').where('parent', '=', uuid).orderBy('seq').execute()).map((r) => r.uuid);
  }

  /** Every read of a resource asks this: compiled once. */
  private readonly startedOnOne = new Prepared((db, resourceUuid: string) => startedQuery(db).where('job_resources.resource_uuid', '=', resourceUuid));

  /** The started jobs working on any of these resources, oldest first, each with the resource. */
  async startedOn(resourceUuids: string[], trx: Db = this.dialect.db): Promise<Array<{ uuid: string; resource_uuid: string }>> {
    if (resourceUuids.length === 0) return [];
    if (resourceUuids.length === 1) return this.startedOnOne.execute(trx, resourceUuids[0]!);
    return startedQuery(trx).where('job_resources.resource_uuid', 'in', resourceUuids).execute();
  }

  /** The jobs working on a resource (only the started ones unless `finishedToo`), oldest first. */
  async workingOn(resourceUuid: string, opts: { finishedToo?: boolean } = {}, trx: Db = this.dialect.db): Promise<string[]> {
    const rows = await trx
      .selectFrom('job_resources')
      .innerJoin('jobs', 'jobs.uuid', 'job_resources.job_uuid')
      .select('jobs.uuid')
      .where('job_resources.resource_uuid', '=', resourceUuid)
      .$if(!opts.finishedToo, (q) => q.where('jobs.status', '=', 'started'))
      .orderBy('jobs.seq')
      .execute();
    return rows.map((r) => r.uuid);
  }

  /** Forgets the jobs created before `cutoff`, with their resource rows. */
  async forgetCreatedBefore(cutoff: string, trx: Db = this.dialect.db): Promise<void> {
    const old = trx.selectFrom('jobs').select('uuid').where('created_at', '<', cutoff);
    await trx.deleteFrom('job_resources').where('job_uuid', 'in', old).execute();
    await trx.deleteFrom('jobs').where('created_at', '<', cutoff).execute();
  }
}

function startedQuery(db: Db) {
  return db
    .selectFrom('job_resources')
    .innerJoin('jobs', 'jobs.uuid', 'job_resources.job_uuid')
    .select(['jobs.uuid as uuid', 'job_resources.resource_uuid as resource_uuid'])
    .where('jobs.status', '=', 'started')
    .orderBy('jobs.seq');
}
