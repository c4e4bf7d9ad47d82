import type { Services } from '../services.ts';
import type { Routes } from './http.ts';

export function capabilityRoutes(r: Routes, svc: Services): void {
  r.get('/capabilities/', { auth: 'user', tags: ['capabilities'], summary: 'Limits and choices of this cloud' }, async () => svc.capabilities);
  r.get('/capabilities/schema/', { auth: 'user', tags: ['capabilities'], summary: 'Capabilities schema' }, async () => ({
    allowed_methods: ['get'],
    help_text: 'Various API capabilities. Check documentation for reference',
  }));
}
