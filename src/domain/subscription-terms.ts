import { errors } from '../errors.ts';
import { isoMicros } from './ids.ts';
import { readInt, readString } from './input.ts';

/** What can be subscribed to; hdd is an old name of dssd. */
export const SUBSCRIBABLE = ['dssd', 'cpu', 'mem', 'tx', 'ip', 'vlan'] as const;
const ALIASES: Record<string, string> = { hdd: 'dssd' };
/** IPs and VLANs are objects: amount N makes N subscriptions of one each. */
export const OBJECT_RESOURCES = ['ip', 'vlan'];
export const MAX_PER_REQUEST = 500;

const UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000, week: 7 * 86_400_000 };

/** Adds a free-text period ("1 month", "2 weeks", "1 year 3 days") to a date. */
export function addPeriod(from: Date, period: string, sign: 1 | -1 = 1): Date {
  const parts = [...period.toLowerCase().matchAll(/(\d+)\s*(year|month|week|day|hour|minute)s?/g)];
  const rest = period
    .toLowerCase()
    .replace(/(\d+)\s*(year|month|week|day|hour|minute)s?/g, '')
    .replace(/[\s,]|and/g, '');
  if (!parts.length || rest) throw errors.invalid('period', `Cannot understand period "${period}"; use e.g. "1 month", "2 weeks", "365 days"`);
  const d = new Date(from);
  for (const [, n, unit] of parts) {
    const k = Number(n) * sign;
    if (unit === 'year') d.setUTCFullYear(d.getUTCFullYear() + k);
    else if (unit === 'month') d.setUTCMonth(d.getUTCMonth() + k);
    else d.setTime(d.getTime() + k * UNIT_MS[unit!]!);
  }
  return d;
}

/** Subscriptions end at noon UTC: the first noon at or after `d`. */
export function nextNoon(d: Date): Date {
  const noon = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), 12));
  return noon.getTime() >= d.getTime() ? noon : new Date(noon.getTime() + 86_400_000);
}

function previousNoon(d: Date): Date {
  const noon = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), 12));
  return noon.getTime() <= d.getTime() ? noon : new Date(noon.getTime() - 86_400_000);
}

function readTime(v: unknown, point: string): Date {
  const s = readString(v, point);
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw errors.invalid(point, `${point} must be an ISO 8601 date and time, not "${s}"`);
  return d;
}

/**
 * start/end of a subscription from the documented combinations: start+end, start+period, end+period, end alone or
 * period alone. The end is rounded up to noon UTC; a start in the past means now.
 */
export function subscriptionTimes(body: Record<string, unknown>, now: Date): { start: Date; end: Date } {
  const has = (k: string) => body[k] !== undefined && body[k] !== null && body[k] !== '';
  const period = has('period') ? readString(body.period, 'period') : null;
  let start = has('start_time') ? readTime(body.start_time, 'start_time') : null;
  let end = has('end_time') ? readTime(body.end_time, 'end_time') : null;
  if (start && end && period) throw errors.invalid('period', 'Give at most two of start_time, end_time and period');
  if (!end && !period) throw errors.invalid('period', 'A period or an end_time is required');
  if (end && period && !start) start = addPeriod(end, period, -1);
  start = start ? new Date(Math.max(now.getTime(), previousNoon(start).getTime())) : now;
  if (!end) end = addPeriod(start, period!);
  end = nextNoon(end);
  if (end.getTime() <= start.getTime()) throw errors.invalid('end_time', 'The subscription would end before it starts');
  return { start, end };
}

/** Python's str(timedelta), which the API uses for period: "31 days, 1:31:53.888650". */
export function timedelta(ms: number): string {
  const totalUs = Math.round(ms * 1000);
  const days = Math.floor(totalUs / 86_400e6);
  let rest = totalUs - days * 86_400e6;
  const h = Math.floor(rest / 3_600e6);
  rest -= h * 3_600e6;
  const m = Math.floor(rest / 60e6);
  rest -= m * 60e6;
  const s = Math.floor(rest / 1e6);
  const us = rest - s * 1e6;
  const clock = `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}${us ? '.' + String(us).padStart(6, '0') : ''}`;
  return days ? `${days} day${days === 1 ? '' : 's'}, ${clock}` : clock;
}

export interface SubscriptionRequest {
  resource: string;
  amount: number;
  start: Date;
  end: Date;
  auto_renew: boolean;
}

/** Validates one create body. */
export function readSubscriptionRequest(body: Record<string, unknown>, now: Date): SubscriptionRequest {
  if (body.resource === undefined || body.resource === null || body.resource === '') throw errors.required('resource');
  const raw = readString(body.resource, 'resource');
  const resource = ALIASES[raw] ?? raw;
  if (!(SUBSCRIBABLE as readonly string[]).includes(resource))
    throw errors.invalid('resource', `Select a valid choice. ${raw} is not one of the available choices: ${SUBSCRIBABLE.join(', ')}`);
  const amount = body.amount === undefined || body.amount === null ? 1 : readInt(body.amount, 'amount', { min: 1 });
  if (OBJECT_RESOURCES.includes(resource) && amount > MAX_PER_REQUEST)
    throw errors.invalid('amount', `At most ${MAX_PER_REQUEST} ${resource} subscriptions per request`);
  const auto_renew = body.auto_renew === undefined ? true : body.auto_renew === true || body.auto_renew === 'true';
  if (body.auto_renew !== undefined && typeof body.auto_renew !== 'boolean' && body.auto_renew !== 'true' && body.auto_renew !== 'false')
    throw errors.invalid('auto_renew', 'auto_renew must be true or false');
  return { resource, amount, ...subscriptionTimes(body, now), auto_renew };
}

/** Status of an IP or VLAN whose subscription chain ended while a server used it (otherwise ''). */
export const ENDED = 'ended';

/** What the rules of a subscription's term read of it: its stored status and its document. */
export interface Term {
  status: string;
  doc: { start_time: string; end_time: string; auto_renew: boolean; descendants: number[] };
}

/**
 * Where an ended subscription that auto-renews is renewed to: by its own length (at least a day) at a time, until
 * past `now`. Only the last link of a chain renews (an extension follows the others); null when it does not renew.
 */
export function renewedEnd(s: Term, now: Date): Date | null {
  const end = new Date(s.doc.end_time);
  if (s.status === 'expired' || end > now || !s.doc.auto_renew || s.doc.descendants.length > 0) return null;
  const length = Math.max(end.getTime() - new Date(s.doc.start_time).getTime(), 86_400_000);
  let next = end;
  while (next <= now) next = new Date(next.getTime() + length);
  return next;
}

/** The end time as a subscription shows it (without zero microseconds). */
export const endTimeText = (d: Date): string => isoMicros(d).replace('.000000', '');

/**
 * The subscription as it stands at `now`, whether or not the background sweep has come by yet: an ended one that
 * auto-renews shows its renewed end, and one that ended otherwise is expired. Reads show this, so a client never
 * waits for the sweep to see a subscription end or renew.
 */
export function termAt<T extends Term>(s: T, now: Date): T {
  const renewed = renewedEnd(s, now);
  if (renewed) return { ...s, doc: { ...s.doc, end_time: endTimeText(renewed) } };
  if (s.status !== 'expired' && new Date(s.doc.end_time) <= now) return { ...s, status: 'expired' };
  return s;
}

/** Whether a subscription still runs at `now` (or renews): what keeps its IP or VLAN with the account. */
export const runsAt = (s: Term, now: Date): boolean => termAt(s, now).status !== 'expired';
