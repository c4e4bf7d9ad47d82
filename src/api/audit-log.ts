import type { Services } from '../services.ts';
import { AuditLog } from '../commands/audit-log.ts';
import type { Routes } from './http.ts';
import { envelope, parseListQuery, selectFields, splitOr } from './lists.ts';
import { ListQuerystring } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

/** /logs/: the account's audit log, newest first. */
export function auditLogRoutes(r: Routes, svc: Services): void {
  const log = new AuditLog(svc);
  log.start();
  const tags = ['logs'];
  r.get('/logs/', { tags, summary: 'Audit log, newest first (?uuid=, ?category=, ?action=)', schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
    const q = parseListQuery(query, { filters: {}, ordering: [] });
    const pick = (k: string) => (typeof query[k] === 'string' ? splitOr(query[k] as string) : undefined);
    const { total, items } = await log.list(actor.user, { limit: q.limit, offset: q.offset, uuid: pick('uuid'), category: pick('category'), action: pick('action') });
    return envelope(items.map((x) => selectFields(x, query)), q, total);
  });
  r.get('/logs/schema/', { tags, summary: 'Audit log schema' }, async () => schemaDoc('audit_log'));
}
