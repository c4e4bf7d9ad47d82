import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';
import type { Capabilities } from '../domain/capabilities.ts';
import { DRIVE_MEDIA, roundSize, storageLimits, type DriveDoc } from '../domain/drive-definition.ts';
import { isUuid } from '../domain/refs.ts';
import { ensureDir, hasQemuImg, imagePath, qcowPath, qcowVirtualSize, type ImageFormat } from './images.ts';

/** The library folder shipped with opensigma: descriptions of the images `scripts/build-images.sh` builds. */
export const BUILTIN_LIBRARY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../library');

/** Descriptive fields of a library drive, shown by /libdrives/ and copied into a clone's meta. */
export const LIBRARY_FIELDS = [
  'arch',
  'category',
  'description',
  'distribution',
  'favourite',
  'image_type',
  'install_notes',
  'os',
  'paid',
  'url',
  'version',
] as const;

export interface LibraryEntry {
  doc: DriveDoc;
  image: string;
  format: ImageFormat;
  source: string;
}

const str = (v: unknown): string | null => (v === undefined || v === null ? null : String(v));

/** Reads one description file (an object or a list of them). Problems are logged and the entry skipped. */
async function readDescriptions(file: string, caps: Capabilities, log: Logger): Promise<LibraryEntry[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (e) {
    log.warn({ file, err: (e as Error).message }, 'library: unreadable description');
    return [];
  }
  const out: LibraryEntry[] = [];
  for (const raw of Array.isArray(parsed) ? parsed : [parsed]) {
    const d = (raw ?? {}) as Record<string, unknown>;
    const skip = (why: string) => log.warn({ file, uuid: d.uuid, why }, 'library: description skipped');
    if (typeof d.uuid !== 'string' || !isUuid(d.uuid)) {
      skip('uuid must be a UUID');
      continue;
    }
    if (typeof d.name !== 'string' || !d.name) {
      skip('name is required');
      continue;
    }
    const media = (d.media ?? 'disk') as DriveDoc['media'];
    if (!DRIVE_MEDIA.includes(media)) {
      skip('media must be disk or cdrom');
      continue;
    }
    if (typeof d.image !== 'string') {
      skip('image (a path relative to the description) is required');
      continue;
    }
    const image = path.resolve(path.dirname(file), d.image);
    if (!fs.existsSync(image)) {
      log.info({ file, image }, 'library: image not built or missing; drive not offered');
      continue;
    }
    const format: ImageFormat = d.format === 'qcow2' || (d.format === undefined && image.endsWith('.qcow2')) ? 'qcow2' : 'raw';
    let size = typeof d.size === 'number' ? d.size : null;
    if (size === null) {
      if (format === 'raw') size = fs.statSync(image).size;
      else if (await hasQemuImg()) size = await qcowVirtualSize(image);
      else {
        skip('a qcow2 image needs qemu-img (or a size in its description)');
        continue;
      }
    }
    const storageType = String(caps.default_storage_type ?? 'dssd');
    const min = storageLimits(caps, storageType)?.size.min ?? 0;
    const library: Record<string, unknown> = {};
    for (const k of LIBRARY_FIELDS)
      library[k] = k === 'category' ? (Array.isArray(d.category) ? d.category.map(String) : []) : k === 'favourite' || k === 'paid' ? d[k] === true : str(d[k]);
    if (library.arch === null) library.arch = '64';
    if (library.os === null) library.os = 'linux';
    if (library.image_type === null) library.image_type = media === 'cdrom' ? 'install' : 'preinst';
    out.push({
      doc: {
        uuid: d.uuid.toLowerCase(),
        name: d.name,
        media,
        size: Math.max(roundSize(size), min),
        storage_type: storageType,
        allow_multimount: false,
        affinities: [],
        meta: {},
        tags: [],
        licenses: Array.isArray(d.licenses) ? d.licenses : [],
        iops: null,
        library,
      },
      image,
      format,
      source: file,
    });
  }
  return out;
}

/** Every description in the given folders; a later folder's entry replaces an earlier one with the same uuid. */
export async function scanLibrary(dirs: string[], caps: Capabilities, log: Logger): Promise<LibraryEntry[]> {
  const byUuid = new Map<string, LibraryEntry>();
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const name of fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .sort())
      for (const e of await readDescriptions(path.join(dir, name), caps, log)) byUuid.set(e.doc.uuid, e);
  }
  return [...byUuid.values()];
}

/**
 * Registers the library as drives with owner null and links each image into the drives folder, where the compute
 * node finds every drive's bytes. Library drives whose image went away stay (servers may refer to them) as unavailable.
 */
export async function loadLibrary(store: Store, storageDir: string, dirs: string[], caps: Capabilities, log: Logger): Promise<number> {
  const entries = await scanLibrary(dirs, caps, log);
  await ensureDir(storageDir);
  for (const e of entries) {
    const link = e.format === 'qcow2' ? qcowPath(storageDir, e.doc.uuid) : imagePath(storageDir, e.doc.uuid);
    const other = e.format === 'qcow2' ? imagePath(storageDir, e.doc.uuid) : qcowPath(storageDir, e.doc.uuid);
    await fsp.rm(other, { force: true });
    // Replaced by a rename: nodes sharing the storage dir may start at once, and neither may see the link missing.
    const tmp = `${link}.${process.pid}.link`;
    await fsp.rm(tmp, { force: true });
    await fsp.symlink(e.image, tmp);
    await fsp.rename(tmp, link);
  }
  const seen = new Set(entries.map((e) => e.doc.uuid));
  await store.transaction(async (trx) => {
    for (const e of entries) {
      const cur = await store.drives.get(e.doc.uuid, trx);
      if (cur && cur.owner !== null) {
        log.warn({ uuid: e.doc.uuid, file: e.source }, 'library: uuid already used by an account drive; skipped');
        continue;
      }
      if (cur) await store.drives.update(e.doc, { status: 'unmounted' }, trx);
      else await store.drives.insert(null, e.doc, 'unmounted', trx);
    }
    const known = await store.drives.ownedBy(null, trx);
    for (const k of known) if (!seen.has(k.uuid)) await store.drives.transition(k.uuid, ['unmounted'], 'unavailable', {}, trx);
  });
  log.info({ drives: entries.length }, 'library loaded');
  return entries.length;
}
