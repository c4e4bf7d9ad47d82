import type { Dialect } from './dialect/index.ts';
import { DocumentTable } from './documents.ts';
import type { SnapshotDoc } from './index.ts';
import type { Db } from './schema.ts';

/** Snapshots, each of one drive (the drive column), whose life they share. */
export class SnapshotTable extends DocumentTable<SnapshotDoc> {
  constructor(dialect: Dialect) {
    super(dialect, 'snapshots', 'snapshots', (d) => ({ name: d.name, drive: d.drive }), new Set(['name', 'uuid', 'status', 'drive']));
  }

  /** The snapshots of any of these drives, in no order. */
  async ofDrives(driveUuids: string[], trx: Db = this.dialect.db): Promise<string[]> {
    if (driveUuids.length === 0) return [];
    return (await trx.selectFrom('snapshots').select('uuid').where('drive', 'in', driveUuids).execute()).map((r) => r.uuid);
  }
}
