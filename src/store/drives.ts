import type { DriveDoc } from '../domain/drive-definition.ts';
import type { Dialect } from './dialect/index.ts';
import { DocumentTable } from './documents.ts';
import type { Db } from './schema.ts';

/** Drives, with what server_drives says of each: which servers have it attached. */
export class DriveTable extends DocumentTable<DriveDoc> {
  constructor(dialect: Dialect) {
    super(dialect, 'drives', 'drives', (d) => ({ name: d.name, media: d.media, size: d.size }));
  }

  /** The servers a drive is attached to. */
  async attachedTo(driveUuid: string, trx: Db = this.dialect.db): Promise<string[]> {
    return (await trx.selectFrom('server_drives').select('server_uuid').where('drive_uuid', '=', driveUuid).execute()).map((r) => r.server_uuid);
  }

  /** Whether any server has the drive attached. */
  async isAttached(driveUuid: string, trx: Db = this.dialect.db): Promise<boolean> {
    return !!(await trx.selectFrom('server_drives').select('server_uuid').where('drive_uuid', '=', driveUuid).executeTakeFirst());
  }

  /** Drops the drive's join rows (the servers' documents are the caller's to write). */
  async detachEverywhere(driveUuid: string, trx: Db): Promise<void> {
    await trx.deleteFrom('server_drives').where('drive_uuid', '=', driveUuid).execute();
  }
}
