import { randomBytes, randomUuid } from './random.ts';

export const newUuid = (): string => randomUuid();

/** Platform MACs start with 22: and are lowercase hex. */
export function newMac(): string {
  const b = randomBytes(5, 'mac');
  return ['22', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** 8 alphanumerics, like CloudSigma's random_vnc_password. */
export function randomPassword(len = 8): string {
  const b = randomBytes(len, 'password');
  return [...b].map((x) => ALNUM[x % ALNUM.length]).join('');
}

export const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, '+00:00');
export const isoMicros = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
