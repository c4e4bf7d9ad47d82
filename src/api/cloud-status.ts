import type { Routes } from './http.ts';

/**
 * GET /cloud_status/: what this cloud offers beyond the API, as CloudSigma answers it (the Go SDK reads it). A
 * self-hosted installation has no free tier, trial, sign-up, SSO, VMware or VPC, no remote snapshots and no host
 * availability zones: every flag false and every amount 0, but each key present.
 */
export function cloudStatusRoutes(r: Routes): void {
  const status = {
    free_tier: { dssd: 0, mem: 0 },
    free_tier_monthly: { tx: 0 },
    guest: false,
    host_availability_zones: false,
    remote_snapshots: false,
    signup: false,
    sso: [] as string[],
    trial: false,
    vmware: false,
    vpc: false,
  };
  const summary = 'What this cloud offers: free tier, trial, sign-up, SSO, VPC (none here)';
  r.get('/cloud_status/', { auth: 'user', tags: ['cloud_status'], summary }, () => status);
}
