import crypto from 'node:crypto';

export const newUuid = (): string => crypto.randomUUID();

/** Platform MACs start with 22: and are lowercase hex. */
export function newMac(): string {
  const b = crypto.randomBytes(5);
  return ['22', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** 8 alphanumerics, like CloudSigma's random_vnc_password. */
export function randomPassword(len = 8): string {
  const b = crypto.randomBytes(len);
  return [...b].map((x) => ALNUM[x % ALNUM.length]).join('');
}

export const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, '+00:00');
export const isoMicros = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
