import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect/index.ts';

/**
 * Resumable uploads: which chunks of a drive have arrived. Row 0 of a drive fixes its chunk size (inserted once,
 * first writer wins), rows 1..n are the chunks received; a retried chunk is the same row.
 */
export function uploadChunks(_dialect: Dialect) {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('upload_chunks')
        .addColumn('drive_uuid', 'text', (c) => c.notNull())
        .addColumn('chunk_number', 'integer', (c) => c.notNull())
        .addColumn('chunk_size', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('upload_chunks_pk', ['drive_uuid', 'chunk_number'])
        .execute();
    },
  };
}
