import { errors } from '../errors.ts';
import type { Capabilities } from './capabilities.ts';
import { newUuid } from './ids.ts';
import { readBool, readInt, readMeta, readString } from './input.ts';
import { readRefList } from './refs.ts';

/** A drive's stored definition. status, owner, mounted_on and jobs live elsewhere. */
export interface DriveDoc {
  uuid: string;
  name: string;
  media: 'disk' | 'cdrom';
  size: number;
  storage_type: string;
  allow_multimount: boolean;
  affinities: string[];
  meta: Record<string, string>;
  tags: string[];
  licenses: unknown[];
  /** Present on library drives: descriptive fields shown by /libdrives/. */
  library?: Record<string, unknown>;
  [key: string]: unknown;
}

export const DRIVE_MEDIA = ['disk', 'cdrom'] as const;

export function applyDriveInput(existing: DriveDoc | null, body: Record<string, unknown>, caps: Capabilities): DriveDoc {
  const has = (k: string) => Object.prototype.hasOwnProperty.call(body, k) && body[k] !== undefined;
  const d: DriveDoc = existing
    ? structuredClone(existing)
    : {
        uuid: newUuid(),
        name: '',
        media: 'disk',
        size: 0,
        storage_type: caps.default_storage_type ?? 'dssd',
        allow_multimount: false,
        affinities: [],
        meta: {},
        tags: [],
        licenses: [],
      };
  if (!existing) for (const k of ['name', 'size', 'media']) if (!has(k) || body[k] === null) throw errors.required(k);
  if (has('name')) d.name = readString(body.name, 'name', { nonEmpty: true, max: 1024 });
  if (has('media')) {
    const m = readString(body.media, 'media');
    if (!DRIVE_MEDIA.includes(m as DriveDoc['media'])) throw errors.invalid('media', `Select a valid choice. ${m} is not one of the available choices: disk, cdrom`);
    d.media = m as DriveDoc['media'];
  }
  if (has('size')) d.size = readInt(body.size, 'size', { min: 1 });
  if (has('storage_type')) {
    const st = readString(body.storage_type, 'storage_type');
    if (!(caps.drives as Record<string, unknown>)[st])
      throw errors.invalid('storage_type', `Storage type ${st} is not available; available: ${Object.keys(caps.drives).join(', ')}`);
    d.storage_type = st;
  }
  if (has('allow_multimount')) d.allow_multimount = readBool(body.allow_multimount, 'allow_multimount');
  if (has('meta')) d.meta = readMeta(body.meta, 'meta');
  if (has('tags')) d.tags = readRefList(body.tags, 'tags');
  if (has('affinities')) {
    if (!Array.isArray(body.affinities)) throw errors.invalid('affinities', 'Expected a list of strings');
    d.affinities = body.affinities.map((a) => readString(a, 'affinities'));
  }
  const lim = (caps.drives as Record<string, { size: { min: number; max: number } }>)[d.storage_type]?.size;
  if (lim && (d.size < lim.min || d.size > lim.max))
    throw errors.invalid('size', `size must be between ${lim.min} and ${lim.max} bytes for ${d.storage_type}, not ${d.size}`);
  return d;
}
