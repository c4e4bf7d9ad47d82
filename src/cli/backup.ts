import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from '../config.ts';
import { run } from '../storage/images.ts';

export interface BackupReport {
  dest: string;
  began: string;
  seconds: number;
  pages: number;
  images: number;
  bytes: number;
  /** drives of the backed-up database whose image was deleted before it could be copied (deleted after the backup began) */
  gone: string[];
  integrity: string;
}

/** Copies a file keeping its holes (a reflink where the file system allows); a symlink (a library image) stays one. */
async function copyEntry(src: string, dst: string): Promise<number> {
  const st = await fsp.lstat(src);
  if (st.isSymbolicLink()) {
    await fsp.symlink(await fsp.readlink(src), dst);
    return 0;
  }
  await run('cp', ['--reflink=auto', '--sparse=always', '--', src, dst]);
  return st.blocks * 512;
}

/**
 * A consistent copy of a running SQLite installation in `dest`, a new data dir that `serve` can start on.
 *
 * The database first, by SQLite's online backup API: the copy is one snapshot of a moment after the backup began,
 * so it holds every write acknowledged before (a commit is on disk before its answer leaves, synchronous=FULL). Then
 * the images of the drives, snapshots and remote snapshots that snapshot knows, each of which was complete on disk
 * before the commit that made it usable. An image deleted in between belongs to a deletion made after the backup
 * began; it is reported. Guests keep writing their disks meanwhile: each image is as a power cut would leave it.
 */
export async function backupSqlite(config: Config, dest: string): Promise<BackupReport> {
  const began = new Date();
  const source = path.join(config.dataDir, 'opensigma.sqlite');
  if (!fs.existsSync(source)) throw new Error(`no SQLite database in ${config.dataDir}`);
  if (fs.existsSync(dest) && fs.readdirSync(dest).length) throw new Error(`${dest} is not empty: give a new directory`);
  fs.mkdirSync(dest, { recursive: true });
  const target = path.join(dest, 'opensigma.sqlite');
  const src = new Database(source, { fileMustExist: true });
  let pages = 0;
  try {
    src.pragma('busy_timeout = 5000');
    // After the first step, the rest in one step: a step is one read transaction, so no write can interleave.
    const r = await src.backup(target, { progress: ({ totalPages }) => ((pages = totalPages), Number.MAX_SAFE_INTEGER) });
    pages = r.totalPages;
  } finally {
    src.close();
  }
  const copy = new Database(target);
  let integrity: string;
  let uuids: { drives: string[]; files: string[]; remote: string[] };
  try {
    copy.pragma('journal_mode = WAL');
    integrity = String((copy.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]?.integrity_check);
    const col = (q: string) => (copy.prepare(q).all() as Array<{ uuid: string }>).map((r) => r.uuid);
    const drives = col("SELECT uuid FROM drives WHERE status NOT IN ('creating', 'uploading', 'cloning_dst', 'unavailable')");
    uuids = { drives, files: [...col('SELECT uuid FROM drives'), ...col('SELECT uuid FROM snapshots')], remote: col('SELECT uuid FROM remotesnapshots') };
  } finally {
    copy.close();
  }
  let images = 0;
  let bytes = 0;
  const gone: string[] = [];
  const copyDir = async (from: string, to: string, names: Set<string>, required: Set<string>) => {
    fs.mkdirSync(to, { recursive: true });
    const present = new Set<string>();
    for (const f of fs.existsSync(from) ? fs.readdirSync(from) : []) {
      const m = /^([0-9a-f-]{36})\.(img|qcow2)$/.exec(f);
      if (!m || !names.has(m[1]!)) continue;
      try {
        bytes += await copyEntry(path.join(from, f), path.join(to, f));
        images++;
        present.add(m[1]!);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !/No such file/.test((e as Error).message)) throw e;
      }
    }
    for (const u of required) if (!present.has(u)) gone.push(u);
  };
  await copyDir(config.storageDir, path.join(dest, 'drives'), new Set(uuids.files), new Set(uuids.drives));
  await copyDir(config.remoteSnapshotDir, path.join(dest, 'remote-snapshots'), new Set(uuids.remote), new Set());
  // The operator's own files of the data dir: capabilities, billing, library; and the node's identity, so that the
  // copy, started in place of the node, takes its hosts at once (their rows in the copy say they are up).
  for (const f of ['capabilities.json', 'billing.json', 'agent-id'])
    if (fs.existsSync(path.join(config.dataDir, f))) fs.copyFileSync(path.join(config.dataDir, f), path.join(dest, f));
  if (fs.existsSync(path.join(config.dataDir, 'library'))) await run('cp', ['-a', '--', path.join(config.dataDir, 'library'), path.join(dest, 'library')]);
  return { dest, began: began.toISOString(), seconds: (Date.now() - began.getTime()) / 1000, pages, images, bytes, gone, integrity };
}
