import type { Services } from '../services.ts';
import type { Refusal, Routes } from './http.ts';
import { envelope, parseListQuery, selectFields, splitOr } from './lists.ts';
import { ListQuerystring } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

/** /logs/: the account's audit log, newest first. */
export function auditLogRoutes(r: Routes, svc: Services): void {
  const log = svc.audit;
  r.refusals.push((refusal) => {
    const what = refusedChange(refusal);
    if (what) log.recordRefusal(refusal.actor.user, what.resourceType, what.uuid, what.action, refusal.error.errors[0]!);
  });
  r.beforeAnswer.push(() => log.settled());
  const tags = ['logs'];
  r.get(
    '/logs/',
    { auth: 'user', tags, summary: 'Audit log, newest first (?uuid=, ?category=, ?action=)', schema: { querystring: ListQuerystring } },
    async ({ actor, query }) => {
      const q = parseListQuery(query, { filters: {}, ordering: [] });
      const pick = (k: string) => (typeof query[k] === 'string' ? splitOr(query[k] as string) : undefined);
      const { total, items } = await log.list(actor.user, {
        limit: q.limit,
        offset: q.offset,
        uuid: pick('uuid'),
        category: pick('category'),
        action: pick('action'),
      });
      return envelope(
        items.map((x) => selectFields(x, query)),
        q,
        total,
      );
    },
  );
  r.get('/logs/schema/', { auth: 'user', tags, summary: 'Audit log schema' }, async () => schemaDoc('audit_log'));
}

/** Refusals worth a log entry: mistakes and wrong states. Not unknown ids (not the actor's to log), throttling or overload. */
const LOGGED_STATUS = new Set([400, 402, 403, 409]);
const VERB: Record<string, string> = { POST: 'created', PUT: 'updated', DELETE: 'deleted' };

/** Which resource and action a refused request was about, from its route: /servers/:uuid/action/?do=start is servers' start. */
function refusedChange(r: Refusal): { resourceType: string; uuid: string; action: string } | null {
  if (!LOGGED_STATUS.has(r.error.statusCode)) return null;
  const [resourceType, ...rest] = r.path.split('/').filter(Boolean);
  if (!resourceType) return null;
  const action = rest.includes('action') ? (typeof r.query.do === 'string' ? r.query.do : undefined) : VERB[r.method];
  return action ? { resourceType, uuid: r.params.uuid ?? '', action } : null;
}
