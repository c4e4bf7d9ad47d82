import { errors, type ApiError } from '../errors.ts';

/**
 * What one account may hold at most, set by the operator (OPENSIGMA_QUOTA_*; 0 means no limit). They keep one tenant
 * from taking what the installation has for all: every address of the IP pool, every VLAN, the disk.
 */
export interface Quotas {
  servers: number;
  drives: number;
  /** total size of the account's drives, in bytes */
  driveBytes: number;
  ips: number;
  vlans: number;
  /** subscriptions not yet expired */
  subscriptions: number;
}

export const DEFAULT_QUOTAS: Quotas = { servers: 200, drives: 400, driveBytes: 2 * 2 ** 40, ips: 16, vlans: 8, subscriptions: 100 };

/** The refusal when an account would go over a quota: 403, CloudSigma's `permission` type, nothing written. */
export function overQuota(key: keyof Quotas, limit: number, what: string): ApiError {
  const amount = key === 'driveBytes' ? `${(limit / 2 ** 30).toFixed(limit % 2 ** 30 ? 1 : 0)} GiB of drives` : `${limit} ${what}`;
  return errors.quotaExceeded(amount);
}
