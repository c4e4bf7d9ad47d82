import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';

/**
 * Drive bytes: one image file per drive in the storage dir (OPENSIGMA_STORAGE_DIR, default `<data>/drives/`),
 * `<uuid>.img` (sparse raw) or `<uuid>.qcow2`. Library drives appear there as symlinks to the operator's image files.
 * Every function takes that directory first.
 */
export function imagePath(dir: string, driveUuid: string): string {
  return path.join(dir, `${driveUuid}.img`);
}

export function qcowPath(dir: string, driveUuid: string): string {
  return path.join(dir, `${driveUuid}.qcow2`);
}

export type ImageFormat = 'raw' | 'qcow2';

export function findImage(dir: string, driveUuid: string): { path: string; format: ImageFormat } | null {
  const p = imagePath(dir, driveUuid);
  if (fs.existsSync(p)) return { path: p, format: 'raw' };
  const q = qcowPath(dir, driveUuid);
  if (fs.existsSync(q)) return { path: q, format: 'qcow2' };
  return null;
}

/** A file being written that only becomes the drive's image by an atomic rename once complete. */
export const partialPath = (finalPath: string): string => `${finalPath}.part`;

export async function ensureDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
}

/** A sparse raw image: costs nothing until written. */
export async function allocateRaw(file: string, size: number): Promise<void> {
  const tmp = partialPath(file);
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
}

/** Grows a raw image in place (holes, no writes). Never shrinks. */
export async function growRaw(file: string, size: number): Promise<void> {
  const st = await fsp.stat(file);
  if (st.size < size) await fsp.truncate(file, size);
}

export function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      if (err.length < 4096) err += d.toString();
    });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err.trim()}`))));
  });
}

function capture(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

let gnuCp: Promise<boolean> | null = null;
/** GNU cp copies only the data extents of a sparse file (SEEK_DATA/SEEK_HOLE) and reflinks where it can. */
function hasGnuCp(): Promise<boolean> {
  gnuCp ??= capture('cp', ['--version'])
    .then((v) => v.includes('GNU coreutils'))
    .catch(() => false);
  return gnuCp;
}

let qemuImg: Promise<boolean> | null = null;
export function hasQemuImg(): Promise<boolean> {
  qemuImg ??= capture('qemu-img', ['--version'])
    .then(() => true)
    .catch(() => false);
  return qemuImg;
}

/**
 * Copies `src` to `dst` keeping holes: a reflink where the file system allows it (btrfs, xfs), otherwise only the
 * data extents are copied, so a 10 GiB sparse drive copies in milliseconds and stays sparse.
 */
export async function sparseCopy(src: string, dst: string): Promise<void> {
  if (await hasGnuCp()) return run('cp', ['--reflink=auto', '--sparse=auto', '--', src, dst]);
  await fsp.copyFile(src, dst, fs.constants.COPYFILE_FICLONE);
}

/** A qcow2 image's virtual size, in bytes. */
export async function qcowVirtualSize(file: string): Promise<number> {
  const info = JSON.parse(await capture('qemu-img', ['info', '--output=json', file])) as { 'virtual-size': number };
  return Number(info['virtual-size']);
}

/**
 * Makes `dst` (a raw image) hold the content of `src` grown to `size`, written beside it and renamed into place, so a
 * failure leaves nothing behind. qcow2 sources become raw (qemu-img convert writes sparse output).
 */
export async function copyImage(src: { path: string; format: ImageFormat }, dst: string, size: number, onProgress?: (fraction: number) => void): Promise<void> {
  const tmp = partialPath(dst);
  // cp and qemu-img write front to back: how far the copy has got is how long the file being written is.
  const total = src.format === 'qcow2' ? size : (await fsp.stat(src.path)).size;
  const watch =
    onProgress && total > 0
      ? setInterval(
          () =>
            fsp.stat(tmp).then(
              (st) => onProgress(Math.min(1, st.size / total)),
              () => {},
            ),
          PROGRESS_INTERVAL_MS,
        )
      : null;
  try {
    if (src.format === 'qcow2') await run('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', src.path, tmp]);
    else await sparseCopy(src.path, tmp);
    if (watch) clearInterval(watch);
    await growRaw(tmp, size);
    await fsp.rename(tmp, dst);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  } finally {
    if (watch) clearInterval(watch);
  }
}

/** How often a running copy reports how far it has got (job progress is written at most this often). */
export const PROGRESS_INTERVAL_MS = 250;

/** Removes every file of a drive (image, qcow2, leftovers of an interrupted write). */
export async function removeImages(dir: string, driveUuid: string): Promise<void> {
  for (const p of [imagePath(dir, driveUuid), qcowPath(dir, driveUuid)]) {
    await fsp.rm(p, { force: true });
    await fsp.rm(partialPath(p), { force: true });
  }
}

/** Bytes a file really occupies on disk (st_blocks are 512-byte units). */
export function allocatedBytes(file: string): number {
  return fs.statSync(file).blocks * 512;
}
