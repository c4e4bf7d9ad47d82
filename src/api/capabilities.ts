import type { Services } from '../services.ts';
import type { Routes } from './http.ts';

export function capabilityRoutes(r: Routes, svc: Services): void {
  // CloudSigma's capabilities, and opensigma's per-account quotas with what the caller holds against each.
  r.get('/capabilities/', { auth: 'user', tags: ['capabilities'], summary: 'Limits and choices of this cloud, and the account quotas' }, async ({ actor }) => ({
    ...svc.capabilities,
    quotas: await svc.store.quotaUse(actor.user),
  }));
  r.get('/capabilities/schema/', { auth: 'user', tags: ['capabilities'], summary: 'Capabilities schema' }, async () => ({
    allowed_methods: ['get'],
    help_text: 'Various API capabilities. Check documentation for reference',
  }));
}
