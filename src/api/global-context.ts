import type { Services } from '../services.ts';
import { globalContextOf } from '../commands/server-context.ts';
import { readMeta } from '../domain/input.ts';
import { errors } from '../errors.ts';
import { AnyObject } from './schemas.ts';
import type { Routes } from './http.ts';

const tags = ['global_context'];

/** /global_context/: one dict per account that every server of it sees in its context under global_context. */
export function globalContextRoutes(r: Routes, svc: Services): void {
  r.get('/global_context/', { auth: 'user', tags, summary: "The account's global server context" }, async ({ actor }) => globalContextOf(svc, actor.user));

  // POST (what the docs and pycloudsigma use) and PUT both replace the whole dict and answer it.
  const replace = async ({ actor, body }: { actor: { user: string }; body: unknown }) => {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw errors.invalid(null, 'Expected a JSON object of strings');
    const data = readMeta(body, 'global_context');
    await svc.store.globalContexts.replace(actor.user, data);
    return data;
  };
  r.post('/global_context/', { auth: 'user', tags, summary: 'Replace the global server context', schema: { body: AnyObject } }, replace);
  r.put('/global_context/', { auth: 'user', tags, summary: 'Replace the global server context', schema: { body: AnyObject } }, replace);
}
