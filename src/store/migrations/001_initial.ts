import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';

/**
 * Every owned resource is a document table: the wire object as JSON in `data`, plus the columns that lists filter,
 * order and join on. `seq` gives the stable insertion order the real API lists in.
 */
export async function createDocTable(
  db: Kysely<any>,
  dialect: Dialect,
  table: string,
  extra: (t: any) => any = (t) => t,
): Promise<void> {
  let builder = db.schema
    .createTable(table)
    .addColumn('seq', dialect.serialType, (c) => (dialect.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('uuid', 'text', (c) => c.notNull().unique())
    .addColumn('owner', 'text')
    .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull());
  builder = extra(builder);
  await builder.execute();
  await db.schema.createIndex(`${table}_owner_seq`).on(table).columns(['owner', 'seq']).execute();
}

export function initial(dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('users')
        .addColumn('uuid', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('user_uuid', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull()) // api | session | async
        .addColumn('csrf', 'text')
        .addColumn('expires_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await createDocTable(db, dialect, 'servers', (t) =>
        t.addColumn('host', 'text').addColumn('runtime', 'text').addColumn('cpu', 'bigint').addColumn('mem', 'bigint'),
      );
      await db.schema.createIndex('servers_host_status').on('servers').columns(['host', 'status']).execute();
      await createDocTable(db, dialect, 'drives', (t) => t.addColumn('media', 'text').addColumn('size', 'bigint'));
      await createDocTable(db, dialect, 'tags');
      await createDocTable(db, dialect, 'keypairs');

      // Which tags each resource carries, for tag= and tag__name= filters.
      await db.schema
        .createTable('resource_tags')
        .addColumn('tag_uuid', 'text', (c) => c.notNull())
        .addColumn('resource_type', 'text', (c) => c.notNull())
        .addColumn('resource_uuid', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('resource_tags_pk', ['tag_uuid', 'resource_type', 'resource_uuid'])
        .execute();
      await db.schema.createIndex('resource_tags_resource').on('resource_tags').columns(['resource_uuid']).execute();

      // Drive attachments, for mounted_on and the multimount rule.
      await db.schema
        .createTable('server_drives')
        .addColumn('server_uuid', 'text', (c) => c.notNull())
        .addColumn('drive_uuid', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('server_drives_pk', ['server_uuid', 'drive_uuid'])
        .execute();
      await db.schema.createIndex('server_drives_drive').on('server_drives').columns(['drive_uuid']).execute();

      // Compute hosts: one row per host a driver runs guests on.
      await db.schema
        .createTable('hosts')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('driver', 'text', (c) => c.notNull())
        .addColumn('cpu', 'bigint', (c) => c.notNull())
        .addColumn('mem', 'bigint', (c) => c.notNull())
        .addColumn('public_host', 'text', (c) => c.notNull())
        .addColumn('agent', 'text', (c) => c.notNull()) // the process that runs this host
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('heartbeat_at', 'text', (c) => c.notNull())
        .execute();

      // Durable host operations (start, stop, shutdown, ...): claimed by the agent that runs the host.
      await db.schema
        .createTable('operations')
        .addColumn('id', dialect.serialType, (c) => (dialect.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('server_uuid', 'text', (c) => c.notNull())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('state', 'text', (c) => c.notNull()) // pending | running | done | failed
        .addColumn('claimed_by', 'text')
        .addColumn('claimed_at', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('error', 'text')
        .addColumn('result', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('operations_host_state').on('operations').columns(['host', 'state', 'id']).execute();

      // Addresses handed to dhcp NICs of running servers: unique while held, released on stop.
      await db.schema
        .createTable('dhcp_leases')
        .addColumn('ip', 'text', (c) => c.primaryKey())
        .addColumn('server_uuid', 'text', (c) => c.notNull())
        .addColumn('mac', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('dhcp_leases_server').on('dhcp_leases').columns(['server_uuid']).execute();

      // Per-account request counters for rate limits shared by every API node.
      await db.schema
        .createTable('rate_counters')
        .addColumn('bucket', 'text', (c) => c.primaryKey())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('window', 'bigint', (c) => c.notNull())
        .execute();
      void sql;
    },
  };
}
