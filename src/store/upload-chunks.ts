import type { Dialect } from './dialect/index.ts';
import type { Db } from './schema.ts';

/**
 * The chunks of resumable uploads received so far, by drive. Chunk 0 is no chunk of the file: it records the chunk
 * size the upload's first writer fixed.
 */
export class UploadChunkRepo {
  constructor(private readonly dialect: Dialect) {}

  private get db(): Db {
    return this.dialect.db;
  }

  async has(driveUuid: string, chunkNumber: number, trx: Db = this.db): Promise<boolean> {
    const row = await trx
      .selectFrom('upload_chunks')
      .select('chunk_number')
      .where('drive_uuid', '=', driveUuid)
      .where('chunk_number', '=', chunkNumber)
      .executeTakeFirst();
    return !!row;
  }

  /** The chunk size an upload has fixed, if any. */
  async fixedSize(driveUuid: string, trx: Db = this.db): Promise<number | null> {
    const row = await trx.selectFrom('upload_chunks').select('chunk_size').where('drive_uuid', '=', driveUuid).where('chunk_number', '=', 0).executeTakeFirst();
    return row ? Number(row.chunk_size) : null;
  }

  /** How many chunks of the file are in (chunk 0 aside). */
  async received(driveUuid: string, trx: Db = this.db): Promise<number> {
    const row = await trx
      .selectFrom('upload_chunks')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('drive_uuid', '=', driveUuid)
      .where('chunk_number', '>', 0)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Records a chunk (one already recorded stays as it was). */
  async record(driveUuid: string, chunkNumber: number, chunkSize: number, trx: Db = this.db): Promise<void> {
    await trx
      .insertInto('upload_chunks')
      .values({ drive_uuid: driveUuid, chunk_number: chunkNumber, chunk_size: chunkSize })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  /** Forgets every chunk of a drive's upload, its fixed size too. */
  async forget(driveUuid: string, trx: Db = this.db): Promise<void> {
    await trx.deleteFrom('upload_chunks').where('drive_uuid', '=', driveUuid).execute();
  }
}
