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
  iops?: number | null;
  /** Present on library drives: descriptive fields shown by /libdrives/. */
  library?: Record<string, unknown>;
  /** While status is cloning_dst: the drive whose bytes are being copied here. */
  clone_of?: string;
  /** While status is resizing: the size being grown to. */
  resize_to?: number;
  /** While status is uploading: the drive is filled chunk by chunk (POST /initupload/), and survives restarts. */
  resumable?: true;
  /** A recursive server delete asked for it while another server used it: it goes when no server holds it. */
  delete_with_last_server?: true;
  [key: string]: unknown;
}

export const DRIVE_MEDIA = ['disk', 'cdrom'] as const;
export const AFFINITIES = ['ssd'];

/** CloudSigma allocates in 16 KiB units: a clone asked for 1207959631 bytes came back with 1207975936. */
export const SIZE_UNIT = 16384;
export const roundSize = (n: number): number => Math.ceil(n / SIZE_UNIT) * SIZE_UNIT;

/** Fields a user may change on a drive mounted on a running server; the rest of a PUT is ignored there. */
export const LIVE_EDITABLE = ['name', 'meta', 'tags', 'allow_multimount'];

interface StorageLimits {
  size: { min: number; max: number };
  iops?: { base: number; min: number; max: number };
}

export function storageLimits(caps: Capabilities, storageType: string): StorageLimits | undefined {
  return (caps.drives as Record<string, StorageLimits>)[storageType];
}

export function readStorageType(v: unknown, caps: Capabilities): string {
  const st = readString(v, 'storage_type');
  if (!storageLimits(caps, st))
    throw errors.invalid('storage_type', `Select a valid choice. ${st} is not one of the available choices: ${Object.keys(caps.drives).join(', ')}`);
  return st;
}

export function checkSize(size: number, storageType: string, caps: Capabilities): void {
  const lim = storageLimits(caps, storageType)?.size;
  if (lim && (size < lim.min || size > lim.max))
    throw errors.invalid('size', `Drive size must be between ${lim.min} and ${lim.max} bytes for storage type ${storageType}, not ${size}`);
}

/**
 * Applies a create or edit body to a drive definition and validates the result against the capabilities.
 * `licenses` and the identity fields are not the user's to set; unknown keys are ignored as the real API does.
 */
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
        iops: null,
      };
  if (!existing) for (const k of ['name', 'size', 'media']) if (!has(k) || body[k] === null) throw errors.required(k);
  if (has('name')) d.name = readString(body.name, 'name', { max: 1024 });
  if (has('media')) {
    const m = readString(body.media, 'media');
    if (!DRIVE_MEDIA.includes(m as DriveDoc['media']))
      throw errors.invalid('media', `Select a valid choice. ${m} is not one of the available choices: disk, cdrom`);
    d.media = m as DriveDoc['media'];
  }
  if (has('size')) d.size = roundSize(readInt(body.size, 'size', { min: 1 }));
  if (has('storage_type') && body.storage_type !== null) d.storage_type = readStorageType(body.storage_type, caps);
  if (has('allow_multimount')) d.allow_multimount = readBool(body.allow_multimount, 'allow_multimount');
  if (has('meta')) d.meta = readMeta(body.meta, 'meta');
  if (has('tags')) d.tags = readRefList(body.tags, 'tags');
  if (has('affinities')) {
    if (!Array.isArray(body.affinities)) throw errors.invalid('affinities', 'Expected a list of strings');
    d.affinities = [...new Set(body.affinities.map((a) => readString(a, 'affinities')))];
    for (const a of d.affinities)
      if (!AFFINITIES.includes(a))
        throw errors.invalid('affinities', `Select a valid choice. ${a} is not one of the available choices: ${AFFINITIES.join(', ')}`);
  }
  if (has('iops')) {
    const lim = storageLimits(caps, d.storage_type)?.iops;
    d.iops = body.iops === null ? null : readInt(body.iops, 'iops', lim ? { min: lim.min, max: lim.max } : { min: 1 });
  }
  checkSize(d.size, d.storage_type, caps);
  return d;
}

/** The subset of an edit that applies to a drive mounted on a running server. */
export function liveEditable(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([k]) => LIVE_EDITABLE.includes(k)));
}
