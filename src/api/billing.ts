import type { Services } from '../services.ts';
import { billingOf } from '../domain/billing.ts';
import { currentUsage } from '../commands/usage.ts';
import type { Routes } from './http.ts';
import { envelope, parseListQuery } from './lists.ts';
import { ListQuerystring } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

const SECONDS_PER_MONTH = 30 * 24 * 3600;
const GiB = 1024 ** 3;

/** Units of the resources a price applies to, and the multiplier that makes a price per unit per second. */
const UNITS: Record<string, { unit: string; multiplier: number }> = {
  cpu: { unit: 'GHz/month', multiplier: 1000 * SECONDS_PER_MONTH },
  mem: { unit: 'GB/month', multiplier: GiB * SECONDS_PER_MONTH },
  ip: { unit: 'IP/month', multiplier: SECONDS_PER_MONTH },
  vlan: { unit: 'VLAN/month', multiplier: SECONDS_PER_MONTH },
  tx: { unit: 'GB', multiplier: GiB },
  sms: { unit: 'SMS', multiplier: 1 },
};

/** The read-only billing family: balance, pricing, current usage, and the empty ledger, discount and licenses lists. */
export function billingRoutes(r: Routes, svc: Services): void {
  const tags = ['billing'];
  const billing = () => billingOf(svc.config.dataDir);

  r.get('/balance/', { auth: 'user', tags, summary: 'Balance of the account (from the operator billing file; 0 by default)' }, async () => {
    const b = billing();
    return { balance: b.balance, credit_limit: b.credit_limit, currency: b.currency };
  });

  r.get('/currentusage/', { auth: 'user', tags, summary: 'What the account holds now against its subscriptions' }, async ({ actor }) => {
    const b = billing();
    return { balance: { balance: b.balance, currency: b.currency }, usage: await currentUsage(svc, actor.user) };
  });

  r.get(
    '/pricing/',
    { auth: 'user', tags, summary: 'Prices per resource (from the operator billing file; 0 by default)', schema: { querystring: ListQuerystring } },
    async ({ query }) => {
      const b = billing();
      const q = parseListQuery(query, { filters: {}, ordering: [], defaultLimit: 0 });
      const resources = [...new Set([...Object.keys(UNITS), ...Object.keys(svc.capabilities.drives ?? {}), ...Object.keys(b.prices)])].sort();
      const level = query.level === undefined ? null : Number(query.level);
      let id = 0;
      const all = resources
        .flatMap((resource) =>
          [0, 1].map((lvl) => ({
            currency: b.currency,
            id: String(++id),
            level: lvl,
            multiplier: (UNITS[resource] ?? { multiplier: GiB * SECONDS_PER_MONTH }).multiplier,
            price: b.prices[resource] ?? '0',
            resource,
            unit: (UNITS[resource] ?? { unit: 'GB/month' }).unit,
          })),
        )
        .filter((p) => level === null || p.level === level);
      const page = q.limit ? all.slice(q.offset, q.offset + q.limit) : all.slice(q.offset);
      const levels = Object.fromEntries(resources.map((res) => [res, 1]));
      return { current: levels, ...envelope(page, q, all.length), next: levels };
    },
  );

  const empty = (path: string, summary: string, defaultLimit = 20) =>
    r.get(path, { auth: 'user', tags, summary, schema: { querystring: ListQuerystring } }, async ({ query }) =>
      envelope([], parseListQuery(query, { filters: {}, ordering: [], defaultLimit }), 0),
    );
  empty('/ledger/', 'Ledger of charges (nothing is charged here)');
  empty('/discount/', 'Discounts for long subscriptions (none)', 0);
  empty('/licenses/', 'Licenses that can be bought (none)');

  for (const [path, name] of [
    ['balance', 'balance'],
    ['currentusage', 'currentusage'],
    ['pricing', 'pricing'],
    ['ledger', 'ledger'],
    ['discount', 'discount'],
    ['licenses', 'licenses'],
  ] as const)
    r.get(`/${path}/schema/`, { auth: 'user', tags, summary: `${path} schema` }, async () => schemaDoc(name));
}
