import { placeErrors, type ApiErrorItem, type PlacedErrors } from './errors.ts';

/** One rule as the form holds it: every field a string, '' meaning "any" (null to the API). */
export interface RuleDraft {
  action: string;
  direction: string;
  ip_proto: string;
  src_ip: string;
  src_port: string;
  dst_ip: string;
  dst_port: string;
  comment: string;
}

export const RULE_FIELDS = ['action', 'direction', 'ip_proto', 'src_ip', 'src_port', 'dst_ip', 'dst_port', 'comment'] as const;

export const emptyRule = (): RuleDraft => ({
  action: 'accept',
  direction: 'in',
  ip_proto: 'tcp',
  src_ip: '',
  src_port: '',
  dst_ip: '',
  dst_port: '',
  comment: '',
});

type ApiRule = { [K in keyof RuleDraft]: string | null };

/** What the API gets: blanks become null (any), the rest is sent as typed so the API's own checks speak. */
export function toRules(drafts: RuleDraft[]): ApiRule[] {
  return drafts.map((d) => {
    const out = {} as ApiRule;
    for (const k of RULE_FIELDS) out[k] = d[k].trim() === '' ? null : d[k].trim();
    return out;
  });
}

export function fromRules(rules: Array<Partial<Record<keyof RuleDraft, string | null>>>): RuleDraft[] {
  return rules.map((r) => {
    const d = emptyRule();
    for (const k of RULE_FIELDS) d[k] = r[k] ?? '';
    return d;
  });
}

/** The form's name for one field of one rule, which is also the API's error_point for it. */
export const ruleField = (i: number, k: string) => `rules.${i}.${k}`;

/**
 * Errors of a policy's save placed on its form: `rules.2.dst_port` beside that rule's field (the general placement
 * drops list indexes, which here tell the rules apart), a point naming the whole rule or the list beside the rules.
 */
export function placePolicyErrors(errors: ApiErrorItem[], ruleCount: number): PlacedErrors {
  const indexed = new Set<string>();
  for (let i = 0; i < ruleCount; i++) for (const k of RULE_FIELDS) indexed.add(ruleField(i, k));
  const out: PlacedErrors = { fields: {}, general: [] };
  const rest: ApiErrorItem[] = [];
  for (const e of errors) {
    const point = e.error_point ?? '';
    if (indexed.has(point)) (out.fields[point] ??= []).push(e.error_message);
    else rest.push(e);
  }
  const placed = placeErrors(rest, ['name', 'rules']);
  for (const [k, v] of Object.entries(placed.fields)) (out.fields[k] ??= []).push(...v);
  out.general.push(...placed.general);
  return out;
}

/** A NIC as a server's PUT carries it. */
export interface NicBody {
  mac?: string | null;
  vlan?: string | null;
  firewall_policy?: string | null;
  [k: string]: unknown;
}

/** The NICs of a server's PUT with one NIC's policy set (null takes it off); the other NICs keep theirs. */
export function withPolicy(nics: NicBody[], mac: string, policy: string | null): NicBody[] {
  if (!nics.some((n) => n.mac === mac)) throw new Error(`The server has no NIC ${mac}`);
  return nics.map((n) => (n.mac === mac ? { ...n, firewall_policy: policy } : n));
}
