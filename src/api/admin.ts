import type { Actor } from '../domain/actor.ts';
import type { Services } from '../services.ts';
import { errors } from '../errors.ts';

/**
 * The administrator is the user OPENSIGMA_ADMIN_EMAIL names or, when it is unset, admin@localhost (made on a fresh
 * data dir). Looked up at each call, not kept: a state load or reset may give that email another uuid.
 */
export async function isAdmin(svc: Services, actor: Actor | null): Promise<boolean> {
  if (!actor) return false;
  const user = await svc.store.users.byUuid(actor.user);
  return !!user && user.email === (svc.config.adminEmail ?? 'admin@localhost');
}

/** Refuses anyone but the administrator with the API's 403 (anonymous callers never get here: the route's auth says 401). */
export async function requireAdmin(svc: Services, actor: Actor | null): Promise<void> {
  if (!(await isAdmin(svc, actor))) throw errors.permission('Only the administrator of this installation may do this');
}
