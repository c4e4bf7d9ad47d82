import fs from 'node:fs';
import path from 'node:path';

/** Where a drive's bytes live: one image file per drive under the data dir. */
export function imagePath(dataDir: string, driveUuid: string): string {
  return path.join(dataDir, 'drives', `${driveUuid}.img`);
}

export function findImage(dataDir: string, driveUuid: string): { path: string; format: 'raw' | 'qcow2' } | null {
  const p = imagePath(dataDir, driveUuid);
  if (fs.existsSync(p)) return { path: p, format: 'raw' };
  const q = path.join(dataDir, 'drives', `${driveUuid}.qcow2`);
  if (fs.existsSync(q)) return { path: q, format: 'qcow2' };
  return null;
}
