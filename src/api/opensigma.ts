import { createRequire } from 'node:module';
import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import type { Actor } from '../domain/actor.ts';
import { created, noContent, type Routes } from './http.ts';
import { parseRules, type Faults } from './faults.ts';
import { toHar, type RequestLog } from './request-log.ts';
import { requireAdmin } from './admin.ts';

/** Resolves an account given as an email or a uuid to its uuid. */
export async function accountUuid(svc: Services, ref: string): Promise<string | null> {
  const u = ref.includes('@') ? await svc.store.users.byEmail(ref) : await svc.store.users.byUuid(ref);
  return u?.uuid ?? null;
}

/** opensigma's own routes, outside CloudSigma's namespace: what client developers' tests steer (docs/test-cloud.md). */
export function opensigmaRoutes(r: Routes, svc: Services, faults: Faults, requests: RequestLog | null): void {
  const admin = (actor: Actor) => requireAdmin(svc, actor);
  const tags = ['opensigma'];
  const listOf = (objects: unknown[]) => ({ meta: { limit: 0, offset: 0, total_count: objects.length }, objects });

  r.get('/opensigma/faults/', { auth: 'user', summary: 'Fault and latency rules of this API node (administrator)', tags }, async ({ actor }) => {
    await admin(actor);
    return listOf(faults.list());
  });
  r.post(
    '/opensigma/faults/',
    { auth: 'user', summary: 'Add fault rules: one, a list, or {"objects": [...]} (administrator)', tags },
    async ({ actor, body }) => {
      await admin(actor);
      return created(listOf(await faults.add(parseRules(body))));
    },
  );
  r.get('/opensigma/faults/:id/', { auth: 'user', summary: 'One fault rule (administrator)', tags }, async ({ actor, params }) => {
    await admin(actor);
    const rule = faults.list().find((x) => x.id === params.id);
    if (!rule) throw errors.notFound('Fault rule');
    return rule;
  });
  r.delete('/opensigma/faults/:id/', { auth: 'user', summary: 'Remove one fault rule (administrator)', tags }, async ({ actor, params }) => {
    await admin(actor);
    if (!faults.remove(params.id!)) throw errors.notFound('Fault rule');
    return noContent();
  });
  r.delete('/opensigma/faults/', { auth: 'user', summary: 'Remove every fault rule (administrator)', tags }, async ({ actor }) => {
    await admin(actor);
    faults.clear();
    return noContent();
  });

  const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  const summary = 'The last requests and answers, redacted (administrator; OPENSIGMA_REQUEST_LOG)';
  r.get('/opensigma/requests/', { auth: 'user', summary, tags }, async ({ actor, query, req }) => {
    await admin(actor);
    if (!requests) throw errors.invalid(null, 'The request log is off: start opensigma with OPENSIGMA_REQUEST_LOG=1000 (or another count)');
    let account: string | null = null;
    if (query.account) {
      account = await accountUuid(svc, String(query.account));
      if (!account) throw errors.invalid('account', `No account ${String(query.account)}`);
    }
    const limit = query.limit === undefined || query.limit === '' ? 0 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 0) throw errors.invalid('limit', 'limit must be a whole number (0 = all)');
    const entries = requests.entries(account, limit);
    if (query.format === 'har') return toHar(entries, `${req.protocol}://${req.host}`, version);
    return listOf(entries);
  });
}
