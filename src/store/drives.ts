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

  /** The servers a drive is attached to (only those of `owner`, when given), oldest first, with their owners. */
  async holders(driveUuid: string, opts: { owner?: string } = {}, trx: Db = this.dialect.db): Promise<Array<{ uuid: string; owner: string | null }>> {
    return trx
      .selectFrom('server_drives')
      .innerJoin('servers', 'servers.uuid', 'server_drives.server_uuid')
      .select(['server_drives.server_uuid as uuid', 'servers.owner as owner'])
      .where('server_drives.drive_uuid', '=', driveUuid)
      .$if(opts.owner !== undefined, (q) => q.where('servers.owner', '=', opts.owner!))
      .orderBy('servers.seq')
      .execute();
  }

  /** Whether the drive is attached to a server that is not stopped (whose guest may be using its bytes). */
  async onServerNotStopped(driveUuid: string, trx: Db = this.dialect.db): Promise<boolean> {
    const row = await trx
      .selectFrom('server_drives')
      .innerJoin('servers', 'servers.uuid', 'server_drives.server_uuid')
      .select('servers.uuid')
      .where('server_drives.drive_uuid', '=', driveUuid)
      .where('servers.status', '!=', 'stopped')
      .executeTakeFirst();
    return !!row;
  }

  /** Whether a server other than `serverUuid` has the drive attached. */
  async attachedElsewhere(driveUuid: string, serverUuid: string, trx: Db = this.dialect.db): Promise<boolean> {
    const others = await trx
      .selectFrom('server_drives')
      .select('server_uuid')
      .where('drive_uuid', '=', driveUuid)
      .where('server_uuid', '!=', serverUuid)
      .execute();
    return others.length > 0;
  }

  /** Drops the drive's join rows (the servers' documents are the caller's to write). */
  async detachEverywhere(driveUuid: string, trx: Db): Promise<void> {
    await trx.deleteFrom('server_drives').where('drive_uuid', '=', driveUuid).execute();
  }
}
