import { errors } from '../errors.ts';

/**
 * Firewall policy rules as CloudSigma's /fwpolicies/ carried them, and the decision they make for a packet. Pure:
 * a driver that enforces policies (on a guest's tap device, say) asks `decide` and needs nothing else of ours.
 */

export type RuleAction = 'accept' | 'drop';
export type RuleDirection = 'in' | 'out' | 'both';
export type RuleProto = 'tcp' | 'udp';

/** A rule in its wire form (and as stored): every key present, addresses normalised to `a.b.c.d/n`. */
export interface FirewallRule {
  action: RuleAction;
  comment: string | null;
  direction: RuleDirection;
  dst_ip: string | null;
  dst_port: string | null;
  ip_proto: RuleProto | null;
  src_ip: string | null;
  src_port: string | null;
}

export const RULE_ACTIONS: readonly RuleAction[] = ['drop', 'accept'];
export const RULE_DIRECTIONS: readonly RuleDirection[] = ['in', 'out', 'both'];
export const RULE_PROTOS: readonly RuleProto[] = ['tcp', 'udp'];
/** Bounds what one policy stores and what every packet decision walks through. */
export const MAX_RULES = 1000;
const MAX_COMMENT = 1024;

/** One packet as a guest's NIC sees it: `in` travels to the guest, `out` leaves it. */
export interface Packet {
  direction: 'in' | 'out';
  /** tcp, udp, icmp, ...: only tcp and udp packets have ports */
  proto: string;
  srcIp: string;
  srcPort?: number | null;
  dstIp: string;
  dstPort?: number | null;
}

interface AddressMatch {
  negate: boolean;
  network: number;
  mask: number;
}

interface PortMatch {
  negate: boolean;
  from: number;
  to: number;
}

interface CompiledRule {
  action: RuleAction;
  direction: RuleDirection;
  proto: RuleProto | null;
  src: AddressMatch | null;
  dst: AddressMatch | null;
  srcPort: PortMatch | null;
  dstPort: PortMatch | null;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** `a.b.c.d` (missing trailing octets are 0, as CloudSigma read "23" as 23.0.0.0) to a 32-bit number, or null. */
function parseIpv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length < 1 || parts.length > 4 || parts.some((p) => !OCTET.test(p))) return null;
  while (parts.length < 4) parts.push('0');
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

const toDotted = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
const maskOf = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

function parseAddress(text: string): { negate: boolean; ip: number; prefix: number } | null {
  const negate = text.startsWith('!');
  const body = (negate ? text.slice(1) : text).trim();
  const m = /^([0-9.]+)(?:\/(\d{1,2}))?$/.exec(body);
  if (!m) return null;
  const ip = parseIpv4(m[1]!);
  const prefix = m[2] === undefined ? 32 : Number(m[2]);
  if (ip === null || prefix > 32) return null;
  return { negate, ip, prefix };
}

function parsePort(text: string): PortMatch | null {
  const negate = text.startsWith('!');
  const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec((negate ? text.slice(1) : text).trim());
  if (!m) return null;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from > 65535 || to > 65535 || from > to) return null;
  return { negate, from, to };
}

const isBlank = (v: unknown) => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');

function choice<T extends string>(v: unknown, allowed: readonly T[], point: string, required: boolean): T | null {
  if (isBlank(v)) {
    if (required) throw errors.required(point);
    return null;
  }
  const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
  if (typeof s !== 'string' || !(allowed as readonly string[]).includes(s))
    throw errors.invalid(point, `Select a valid choice. ${JSON.stringify(v)} is not one of the available choices: ${allowed.join(', ')}`);
  return s as T;
}

function address(v: unknown, point: string): string | null {
  if (isBlank(v)) return null;
  const a = typeof v === 'string' ? parseAddress(v.trim()) : null;
  if (!a) throw errors.invalid(point, `${JSON.stringify(v)} is not an IPv4 address or network (a.b.c.d or a.b.c.d/n, ! in front negates)`);
  return `${a.negate ? '!' : ''}${toDotted(a.ip)}/${a.prefix}`;
}

function port(v: unknown, point: string): string | null {
  if (isBlank(v)) return null;
  const text = typeof v === 'number' && Number.isInteger(v) ? String(v) : typeof v === 'string' ? v.trim() : null;
  const p = text === null ? null : parsePort(text);
  if (!p) throw errors.invalid(point, `${JSON.stringify(v)} is not a port or port range (0 to 65535, from:to with from <= to, ! in front negates)`);
  return `${p.negate ? '!' : ''}${p.from === p.to && !text!.includes(':') ? p.from : `${p.from}:${p.to}`}`;
}

/**
 * Reads the `rules` of a policy body: a list of rule objects, each checked field by field, the error pointing at the
 * rule and field (`rules.2.dst_port`). Unknown keys are ignored, as CloudSigma ignored them.
 */
export function readRules(value: unknown, point = 'rules'): FirewallRule[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw errors.invalid(point, 'Expected a list of rules');
  if (value.length > MAX_RULES) throw errors.invalid(point, `A policy has at most ${MAX_RULES} rules`);
  return value.map((raw, i) => {
    const at = `${point}.${i}`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw errors.invalid(at, `Rule ${i} is not an object`);
    const r = raw as Record<string, unknown>;
    let comment: string | null = null;
    if (r.comment !== undefined && r.comment !== null) {
      if (typeof r.comment !== 'string') throw errors.invalid(`${at}.comment`, 'Expected a string');
      if (r.comment.length > MAX_COMMENT) throw errors.invalid(`${at}.comment`, `At most ${MAX_COMMENT} characters`);
      comment = r.comment;
    }
    return {
      action: choice(r.action, RULE_ACTIONS, `${at}.action`, true)!,
      comment,
      direction: choice(r.direction, RULE_DIRECTIONS, `${at}.direction`, true)!,
      dst_ip: address(r.dst_ip, `${at}.dst_ip`),
      dst_port: port(r.dst_port, `${at}.dst_port`),
      ip_proto: choice(r.ip_proto, RULE_PROTOS, `${at}.ip_proto`, false),
      src_ip: address(r.src_ip, `${at}.src_ip`),
      src_port: port(r.src_port, `${at}.src_port`),
    };
  });
}

function compileAddress(text: string | null): AddressMatch | null {
  if (text === null) return null;
  const a = parseAddress(text);
  if (!a) throw new Error(`not a normalised address: ${text}`);
  const mask = maskOf(a.prefix);
  return { negate: a.negate, network: (a.ip & mask) >>> 0, mask };
}

function compile(r: FirewallRule): CompiledRule {
  const portOf = (t: string | null) => {
    if (t === null) return null;
    const p = parsePort(t);
    if (!p) throw new Error(`not a normalised port: ${t}`);
    return p;
  };
  return {
    action: r.action,
    direction: r.direction,
    proto: r.ip_proto,
    src: compileAddress(r.src_ip),
    dst: compileAddress(r.dst_ip),
    srcPort: portOf(r.src_port),
    dstPort: portOf(r.dst_port),
  };
}

/** A rule list is compiled once, however many packets it decides. */
const compiled = new WeakMap<readonly FirewallRule[], CompiledRule[]>();

function compiledRules(rules: readonly FirewallRule[]): CompiledRule[] {
  let c = compiled.get(rules);
  if (!c) compiled.set(rules, (c = rules.map(compile)));
  return c;
}

/** An address that is not IPv4 matches no address condition, negated or not. */
function addressMatches(m: AddressMatch | null, ip: string): boolean {
  if (!m) return true;
  const n = parseIpv4Strict(ip);
  if (n === null) return false;
  return ((n & m.mask) >>> 0 === m.network) !== m.negate;
}

function parseIpv4Strict(ip: string): number | null {
  return ip.split('.').length === 4 ? parseIpv4(ip) : null;
}

/** A packet without ports (icmp, ...) matches no port condition, negated or not: ports only exist for tcp and udp. */
function portMatches(m: PortMatch | null, packetPort: number | null | undefined, hasPorts: boolean): boolean {
  if (!m) return true;
  if (!hasPorts || packetPort === null || packetPort === undefined) return false;
  return (packetPort >= m.from && packetPort <= m.to) !== m.negate;
}

function ruleMatches(r: CompiledRule, p: Packet): boolean {
  const proto = p.proto.toLowerCase();
  const hasPorts = proto === 'tcp' || proto === 'udp';
  return (
    (r.direction === 'both' || r.direction === p.direction) &&
    (r.proto === null || r.proto === proto) &&
    addressMatches(r.src, p.srcIp) &&
    addressMatches(r.dst, p.dstIp) &&
    portMatches(r.srcPort, p.srcPort, hasPorts) &&
    portMatches(r.dstPort, p.dstPort, hasPorts)
  );
}

/** Index of the rule that decides the packet (the first that matches), or -1 when none does. */
export function firstMatch(rules: readonly FirewallRule[], packet: Packet): number {
  return compiledRules(rules).findIndex((r) => ruleMatches(r, packet));
}

/**
 * What a policy does with a packet: the first matching rule decides; a packet no rule matches is accepted, and so is
 * every packet of a NIC without a policy (CloudSigma's default).
 */
export function decide(policy: { rules: readonly FirewallRule[] } | null | undefined, packet: Packet): RuleAction {
  if (!policy) return 'accept';
  const i = firstMatch(policy.rules, packet);
  return i < 0 ? 'accept' : policy.rules[i]!.action;
}

/** How many TCP ports of one NIC a policy may open to the host at most (each is a listener on the host). */
export const MAX_FORWARDED_PORTS = 64;

/**
 * Which TCP ports of a guest's public NIC are reachable from the host, under its policy: the default ports (SSH,
 * HTTP, HTTPS) and every port an inbound accept rule names (single ports and ranges of at most
 * MAX_FORWARDED_PORTS ports), each kept only if the policy accepts a connection to it from `hostIp`. Without a policy
 * the default ports are. Rules on source addresses other than the host's, and on source ports, cannot apply to
 * forwarded connections (every one comes from the host), so they decide nothing here.
 */
export function forwardedPorts(
  policy: { rules: readonly FirewallRule[] } | null | undefined,
  defaults: readonly number[],
  at: { hostIp: string; guestIp: string },
): number[] {
  if (!policy) return [...defaults];
  const candidates = new Set(defaults);
  for (const r of policy.rules) {
    if (r.action !== 'accept' || r.direction === 'out' || (r.ip_proto !== null && r.ip_proto !== 'tcp') || r.dst_port === null) continue;
    const p = parsePort(r.dst_port);
    if (!p || p.negate || p.to - p.from + 1 > MAX_FORWARDED_PORTS) continue;
    for (let n = p.from; n <= p.to && candidates.size < MAX_FORWARDED_PORTS + defaults.length; n++) if (n > 0) candidates.add(n);
  }
  const open = [...candidates].filter(
    (dstPort) => decide(policy, { direction: 'in', proto: 'tcp', srcIp: at.hostIp, srcPort: null, dstIp: at.guestIp, dstPort }) === 'accept',
  );
  return open.sort((a, b) => a - b).slice(0, MAX_FORWARDED_PORTS);
}
