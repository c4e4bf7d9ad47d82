/** The profile fields the Account page edits, in its order, with their labels. */
export const PROFILE_FIELDS: Array<[string, string]> = [
  ['first_name', 'First name'],
  ['last_name', 'Last name'],
  ['nickname', 'Nickname'],
  ['company', 'Company'],
  ['phone', 'Phone'],
  ['address', 'Address'],
  ['town', 'Town'],
  ['postcode', 'Postcode'],
  ['country', 'Country'],
  ['vat', 'VAT number'],
  ['clone_naming', 'Clone naming'],
  ['autotopup_amount', 'Automatic top-up amount'],
];

/**
 * Only what the user changed goes in the PUT: a field another tab changed meanwhile is not put back, and an error
 * can only be about something typed here.
 */
export function profileChanges(original: Record<string, unknown>, draft: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k] of PROFILE_FIELDS) if (k in draft && draft[k] !== String(original[k] ?? '')) out[k] = draft[k]!;
  return out;
}

export interface SubscriptionDraft {
  resource: string;
  amount: string;
  period: string;
  auto_renew: boolean;
}

/** What each subscribable resource is, in the words of the form (the amount's unit included). */
export const RESOURCES: Array<[string, string]> = [
  ['ip', 'Public IP addresses (amount: how many)'],
  ['vlan', 'VLANs (amount: how many)'],
  ['cpu', 'CPU (amount in MHz)'],
  ['mem', 'Memory (amount in bytes)'],
  ['dssd', 'SSD storage (amount in bytes)'],
  ['tx', 'Outbound traffic (amount in bytes)'],
];

/** The POST body: a whole number goes as a number, anything else as typed, so the API's own check answers it. */
export function subscriptionBody(d: SubscriptionDraft): { objects: Array<Record<string, unknown>> } {
  const amount = /^\s*\d+\s*$/.test(d.amount) ? Number(d.amount) : d.amount;
  return { objects: [{ resource: d.resource, amount, period: d.period.trim(), auto_renew: d.auto_renew }] };
}
