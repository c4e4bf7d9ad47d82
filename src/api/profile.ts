import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { isoMicros } from '../domain/ids.ts';
import { readBool, readMeta, readString } from '../domain/input.ts';
import { objectBody, type Routes } from './http.ts';
import { AnyObject } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';
import { billingOf } from '../domain/billing.ts';

const CLONE_NAMING = ['NONE', 'COUNTER', 'DATE', 'TIMESTAMP'];

/** Editable profile fields and their defaults (digest §9). */
const STRINGS: Record<string, string | null> = {
  address: '',
  company: '',
  country: '',
  first_name: '',
  language: 'EN',
  last_name: '',
  my_notes: '',
  nickname: '',
  phone: '',
  postcode: '',
  reseller: '',
  title: '',
  town: '',
  vat: '',
};
const NULLABLE = new Set(['my_notes', 'postcode']);
const BOOLS: Record<string, boolean> = {
  api_https_only: false,
  has_autotopup: false,
  has_tx_autotopup: false,
  invoicing: true,
  key_auth: false,
  mailing_list: true,
};
const DECIMALS = ['autotopup_amount', 'autotopup_threshold', 'tx_autotopup_amount', 'tx_autotopup_threshold'];

function readDecimal(v: unknown, point: string): string {
  const s = typeof v === 'number' && Number.isFinite(v) ? String(v) : v;
  if (typeof s !== 'string' || !/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(s.trim())) throw errors.invalid(point, `${point} must be a decimal number`);
  return s.trim();
}

/** Applies a PUT body to the stored profile: read-only and unknown fields are ignored, everything else is checked. */
export function applyProfile(stored: Record<string, unknown>, body: Record<string, unknown>): Record<string, unknown> {
  const out = { ...stored };
  for (const [k, v] of Object.entries(body)) {
    if (k in STRINGS) out[k] = v === null && NULLABLE.has(k) ? null : readString(v, k, { max: 4096 });
    else if (k in BOOLS) out[k] = readBool(v, k);
    else if (DECIMALS.includes(k)) out[k] = readDecimal(v, k);
    else if (k === 'meta') out.meta = readMeta(v, 'meta');
    else if (k === 'clone_naming') {
      if (typeof v !== 'string' || !CLONE_NAMING.includes(v)) throw errors.invalid('clone_naming', `clone_naming must be one of ${CLONE_NAMING.join(', ')}`);
      out.clone_naming = v;
    }
  }
  return out;
}

/** /profile/: the account's own details; clone_naming drives the names of clones. */
export function profileRoutes(r: Routes, svc: Services): void {
  const tags = ['profile'];
  const render = async (user: string) => {
    const row = await svc.store.users.byUuid(user);
    if (!row) throw errors.notFound('User');
    const p = (row.data.profile ?? {}) as Record<string, unknown>;
    const billing = billingOf(svc.config.dataDir);
    const pick = (k: string, d: unknown) => (k in p ? p[k] : d);
    const out: Record<string, unknown> = {};
    const fields: Record<string, unknown> = {
      ...Object.fromEntries(Object.entries(STRINGS).map(([k, d]) => [k, pick(k, d)])),
      ...Object.fromEntries(Object.entries(BOOLS).map(([k, d]) => [k, pick(k, d)])),
      ...Object.fromEntries(DECIMALS.map((k) => [k, pick(k, '0')])),
      bank_reference: null,
      clone_naming: pick('clone_naming', 'NONE'),
      currency: billing.currency,
      email: row.email,
      meta: pick('meta', {}),
      network_restrictions: null,
      signup_time: isoMicros(new Date(String(row.created_at))),
      state: 'REGULAR',
      tax_name: null,
      tax_rate: null,
      uuid: row.uuid,
    };
    for (const k of Object.keys(fields).sort()) out[k] = fields[k];
    return out;
  };
  svc.renderers.set('profile', (actor, user) => (user === actor.user ? render(user) : Promise.resolve(null)));
  r.get('/profile/', { auth: 'user', tags, summary: 'Your profile' }, async ({ actor }) => render(actor.user));
  r.get('/profile/schema/', { auth: 'user', tags, summary: 'Profile schema' }, async () => schemaDoc('profile'));
  r.put(
    '/profile/',
    { auth: 'user', tags, summary: 'Edit your profile (read-only fields are ignored)', schema: { body: AnyObject } },
    async ({ actor, body }) => {
      const b = objectBody(body);
      await svc.store.transaction(async (trx) => {
        await svc.store.users.editData(actor.user, (data) => ({ ...data, profile: applyProfile((data.profile ?? {}) as Record<string, unknown>, b) }), trx);
      });
      svc.publish('profile', actor.user, actor.user, 'updated');
      return render(actor.user);
    },
  );
}
