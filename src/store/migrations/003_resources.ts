import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';
import { createDocTable } from './001_initial.ts';

/** Jobs, snapshots, ACLs and the audit log. */
export function resources(dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      // status = job state; parent links drive_clone children to their server_clone.
      await createDocTable(db, dialect, 'jobs', (t) => t.addColumn('parent', 'text'));
      await db.schema.createIndex('jobs_parent').on('jobs').columns(['parent']).execute();
      // Which resources a job works on, for the `jobs` field of servers and drives.
      await db.schema
        .createTable('job_resources')
        .addColumn('job_uuid', 'text', (c) => c.notNull())
        .addColumn('resource_uuid', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('job_resources_pk', ['job_uuid', 'resource_uuid'])
        .execute();
      await db.schema.createIndex('job_resources_resource').on('job_resources').columns(['resource_uuid']).execute();

      await createDocTable(db, dialect, 'snapshots', (t) => t.addColumn('drive', 'text'));
      await db.schema.createIndex('snapshots_drive').on('snapshots').columns(['drive']).execute();

      await createDocTable(db, dialect, 'acls');
      // Denormalised from the ACL document so that access checks are one join.
      await db.schema
        .createTable('acl_grantees')
        .addColumn('acl_uuid', 'text', (c) => c.notNull())
        .addColumn('user_uuid', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('acl_grantees_pk', ['acl_uuid', 'user_uuid'])
        .execute();
      await db.schema.createIndex('acl_grantees_user').on('acl_grantees').columns(['user_uuid']).execute();
      await db.schema
        .createTable('acl_tags')
        .addColumn('acl_uuid', 'text', (c) => c.notNull())
        .addColumn('tag_uuid', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('acl_tags_pk', ['acl_uuid', 'tag_uuid'])
        .execute();
      await db.schema.createIndex('acl_tags_tag').on('acl_tags').columns(['tag_uuid']).execute();

      await db.schema
        .createTable('audit_log')
        .addColumn('id', dialect.serialType, (c) => (dialect.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('actor', 'text')
        .addColumn('resource_uuid', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('success', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('error_message', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('error_point', 'text')
        .addColumn('error_type', 'text')
        .addColumn('timestamp', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_owner_id').on('audit_log').columns(['owner', 'id']).execute();
    },
  };
}
