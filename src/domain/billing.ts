import fs from 'node:fs';
import path from 'node:path';

/**
 * What an operator charges: `<dataDir>/billing.json` ({"currency", "balance", "credit_limit", "prices": {resource:
 * price per unit}}). Without it everything is free: balance 0, every price 0. Money is a decimal string on the wire.
 */
export interface Billing {
  currency: string;
  balance: string;
  credit_limit: string | null;
  prices: Record<string, string>;
}

const DEFAULTS: Billing = { currency: 'EUR', balance: '0', credit_limit: null, prices: {} };

export function billingOf(dataDir: string): Billing {
  const file = path.join(dataDir, 'billing.json');
  if (!fs.existsSync(file)) return DEFAULTS;
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Billing>;
  const money = (v: unknown, d: string) => (v === undefined || v === null ? d : String(v));
  return {
    currency: typeof raw.currency === 'string' ? raw.currency : DEFAULTS.currency,
    balance: money(raw.balance, '0'),
    credit_limit: raw.credit_limit === undefined || raw.credit_limit === null ? null : String(raw.credit_limit),
    prices: Object.fromEntries(Object.entries(raw.prices ?? {}).map(([k, v]) => [k, String(v)])),
  };
}
