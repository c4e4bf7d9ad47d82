import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

/** CloudSigma's published request/response transcripts and libcloud's fixtures (see test/fixtures/cloudsigma/README.md). */
export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cloudsigma');

export interface Transcript {
  /** request: method; response: status code */
  method: string;
  path: string;
  status: number;
  headers: Record<string, string>;
  body: any;
}

/** The dumps are not all strict JSON (trailing commas in the abbreviated GPU/SGX examples). */
function lenientJson(text: string): any {
  const t = text.trim();
  if (!t) return undefined;
  return JSON.parse(t.replace(/,(\s*[}\]])/g, '$1'));
}

/** Parses a transcript file: a request or status line, headers, a blank line, a JSON body. */
export function readDump(name: string): Transcript {
  let text = fs.readFileSync(path.join(FIXTURES, name), 'utf8').replace(/\r\n/g, '\n');
  // A few dumps (remote_snapshots/) start the body right after the headers, without the blank line.
  text = text.replace(/^([^\n]*(?:\n[A-Za-z-]+:[^\n]*)*)\n(?=[{[])/, '$1\n\n');
  const blank = text.indexOf('\n\n');
  const head = (blank < 0 ? text : text.slice(0, blank)).split('\n');
  const first = head[0]!.split(' ');
  const headers: Record<string, string> = {};
  for (const h of head.slice(1)) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  const body = blank < 0 ? undefined : lenientJson(text.slice(blank + 2));
  const isResponse = first[0]!.startsWith('HTTP/');
  return {
    method: isResponse ? '' : first[0]!,
    path: isResponse ? '' : first[1]!,
    status: isResponse ? Number(first[1]) : 0,
    headers,
    body,
  };
}

export const readFixture = (name: string): any => JSON.parse(fs.readFileSync(path.join(FIXTURES, 'libcloud', name), 'utf8'));

/** Values that differ between clouds and runs: ids, addresses, times, console endpoints. */
const VOLATILE = [
  /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g,
  /\b22(?::[0-9a-f]{2}){5}\b/g,
  /\b\d{1,3}(?:\.\d{1,3}){3}\b/g,
  /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?\+00:00/g,
];
const ENDPOINT = /^(vnc|csconsole):\/\/[^/:]+:\d+$/;
const KINDS = ['uuid', 'mac', 'ip', 'time'];

/**
 * The correspondence between a transcript's ids and ours: filled while comparing responses, used to rewrite the next
 * requests of the same scenario. One dump id always stands for the same id of ours.
 */
export class Bindings {
  readonly map = new Map<string, string>();

  bind(theirs: string, ours: string, where: string): void {
    const had = this.map.get(theirs);
    if (had === undefined) this.map.set(theirs, ours);
    else assert.equal(ours, had, `${where}: ${theirs} stood for ${had} earlier, now for ${ours}`);
  }

  /** Rewrites every known dump id inside a request path or body. */
  apply<T>(v: T): T {
    if (typeof v === 'string') {
      let s: string = v;
      for (const re of VOLATILE) s = s.replace(re, (m) => this.map.get(m) ?? m);
      return s as T;
    }
    if (Array.isArray(v)) return v.map((x) => this.apply(x)) as T;
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.apply(x)])) as T;
    return v;
  }
}

export interface CompareOptions {
  bindings?: Bindings;
  /** Keys we emit beyond the dump, by path pattern ("nics[].firewall_policy"); documented in docs/wire-compatibility.md. */
  extras?: string[];
  /** Paths whose value may differ: runtime counters, generated passwords... */
  free?: string[];
  /** Paths of arrays that may be shorter (even empty) on our side, because what fills them is another resource's. */
  shorter?: string[];
  /** Only compare the keys the dump shows (abbreviated examples). */
  partial?: boolean;
}

/** Our documented additions to CloudSigma's 2015-era server dumps (see docs/wire-compatibility.md). */
export const SERVER_EXTRAS = [
  'allocation_pool',
  'auto_start',
  'epcs',
  'gpus',
  'is_grey',
  'nics[].firewall_policy',
  ...['rx_foreign', 'rx_local', 'tx_foreign', 'tx_local'].flatMap((k) => [`nics[].runtime.${k}`, `runtime.nics[].${k}`]),
];

const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const norm = (p: string) => p.replace(/\[\d+\]/g, '[]').replace(/^objects\[\]\./, '');

function matches(patterns: string[] | undefined, p: string): boolean {
  const n = norm(p);
  return (patterns ?? []).some((x) => x === n || x === p || n.endsWith(`.${x}`) || n.startsWith(`${x}.`) || n.startsWith(`${x}[]`));
}

/**
 * Compares our response body with a dump's, field by field: the same keys at every level (our documented extras
 * aside), the same JSON types, the same values, except ids/macs/addresses/times, which must merely correspond
 * consistently through `bindings`.
 */
export function compareWire(ours: unknown, theirs: unknown, opts: CompareOptions = {}, at = ''): void {
  const b = opts.bindings ?? new Bindings();
  const where = at || '(root)';
  if (matches(opts.free, at)) return;
  assert.equal(typeOf(ours), typeOf(theirs), `${where}: ours is ${typeOf(ours)} ${JSON.stringify(ours)?.slice(0, 200)}, the dump's is ${typeOf(theirs)}`);
  if (Array.isArray(theirs)) {
    const o = ours as unknown[];
    if (matches(opts.shorter, at)) assert.ok(o.length <= theirs.length, `${where}: ${o.length} items, the dump has ${theirs.length}`);
    else assert.equal(o.length, theirs.length, `${where}: ${o.length} items, the dump has ${theirs.length}`);
    o.forEach((x, i) => compareWire(x, theirs[i], { ...opts, bindings: b }, `${at}[${i}]`));
    return;
  }
  if (theirs && typeof theirs === 'object') {
    const o = ours as Record<string, unknown>;
    const t = theirs as Record<string, unknown>;
    for (const k of Object.keys(t)) assert.ok(k in o, `${where}: missing key ${k}`);
    if (!opts.partial) for (const k of Object.keys(o)) if (!(k in t)) assert.ok(matches(opts.extras, at ? `${at}.${k}` : k), `${where}: extra key ${k}`);
    for (const k of Object.keys(t)) compareWire(o[k], t[k], { ...opts, bindings: b }, at ? `${at}.${k}` : k);
    return;
  }
  if (typeof theirs === 'string' && ENDPOINT.test(theirs)) {
    assert.match(ours as string, ENDPOINT, where);
    assert.equal((ours as string).split(':')[0], theirs.split(':')[0], where);
    return;
  }
  if (typeof theirs === 'string') {
    const tokens: string[] = [];
    const kinds: number[] = [];
    let template = theirs;
    VOLATILE.forEach((re, i) => {
      template = template.replace(re, (m) => {
        tokens.push(m);
        kinds.push(i);
        return `\u0000${i}\u0000`;
      });
    });
    if (!tokens.length) return assert.equal(ours, theirs, where);
    // The same text with each volatile token standing in for one of ours of the same kind.
    const re = new RegExp(
      '^' +
        template
          .split(/\u0000\d\u0000/)
          .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join(`(${'[^/"]+'})`) +
        '$',
    );
    const m = re.exec(ours as string);
    assert.ok(m, `${where}: ${JSON.stringify(ours)} does not have the shape of ${JSON.stringify(theirs)}`);
    tokens.forEach((tok, i) => {
      const mine = m![i + 1]!;
      const kind = KINDS[kinds[i]!]!;
      const sample = new RegExp(`^(?:${VOLATILE[kinds[i]!]!.source})$`);
      assert.match(mine, sample, `${where}: ${mine} is not a ${kind}`);
      if (kind === 'uuid' || kind === 'mac' || kind === 'ip') b.bind(tok, mine, where);
    });
    return;
  }
  assert.equal(ours, theirs, where);
}
