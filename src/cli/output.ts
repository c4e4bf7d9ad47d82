import { Option, type Command } from 'commander';
import { UsageError } from './errors.ts';
import { toYaml } from './yaml.ts';

export type Format = 'table' | 'json' | 'yaml';

export interface OutputOptions {
  output?: Format;
  fields?: string;
}

export function withOutput(cmd: Command, list = false): Command {
  cmd.addOption(new Option('-o, --output <format>', 'table, json (the API objects) or yaml').choices(['table', 'json', 'yaml']).default('table'));
  cmd.option('--fields <a,b,...>', list ? 'columns to show (dotted paths reach inside: runtime.status)' : 'fields to show');
  return cmd;
}

/** A value at a dotted path: runtime.nics.0.ip_v4.uuid */
export function pick(obj: unknown, p: string): unknown {
  let v: unknown = obj;
  for (const part of p.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function fieldsOf(opts: OutputOptions): string[] | null {
  if (!opts.fields) return null;
  const f = opts.fields
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!f.length) throw new UsageError('--fields needs at least one field name');
  return f;
}

/** Only the chosen fields of an object, keeping their paths as keys. */
function only(obj: unknown, fields: string[] | null): unknown {
  if (!fields || obj === null || typeof obj !== 'object') return obj;
  return Object.fromEntries(fields.map((f) => [f, pick(obj, f) ?? null]));
}

const BYTES = new Set(['mem', 'size']);

/** Sizes for people: 1073741824 reads 1 GiB (json and yaml keep the API's numbers). */
function human(column: string, v: unknown): unknown {
  if (!BYTES.has(column.split('.').at(-1)!) || typeof v !== 'number') return v;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let n = v;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[i]}`;
}

/** How a value reads in one table cell: references by uuid, lists by their items, the rest as compact JSON. */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return v.map((x) => (x && typeof x === 'object' && 'uuid' in x ? String((x as { uuid: unknown }).uuid) : cell(x))).join(',');
  if ('uuid' in v && Object.keys(v).every((k) => k === 'uuid' || k === 'resource_uri')) return String((v as { uuid: unknown }).uuid);
  return JSON.stringify(v);
}

/** The terminal's width when stdout is one (or COLUMNS); Infinity into a pipe or a file, where nothing is cut. */
function width(): number {
  const c = Number(process.env.COLUMNS);
  if (Number.isInteger(c) && c > 0) return c;
  return process.stdout.isTTY ? process.stdout.columns || 80 : Infinity;
}

const cut = (s: string, n: number) => (s.length <= n ? s : n <= 1 ? s.slice(0, n) : `${s.slice(0, n - 1)}…`);

/** Columns two spaces apart; when too wide for the terminal the widest columns give way first. */
export function table(header: string[], rows: string[][]): string {
  const clean = rows.map((r) => r.map((c) => c.replace(/[\r\n\t]+/g, ' ')));
  const widths = header.map((h, i) => Math.max(h.length, ...clean.map((r) => r[i]!.length)));
  const max = width();
  const total = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  while (total() > max) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= 4) break;
    widths[widest]!--;
  }
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? cut(c, widths[i]!) : cut(c, widths[i]!).padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header.map((h) => h.toUpperCase())), ...clean.map(line)].join('\n') + '\n';
}

function serialise(value: unknown, format: Format): string {
  return format === 'yaml' ? toYaml(value) : JSON.stringify(value, null, 2) + '\n';
}

/** A list: the objects as the API gave them (json, yaml) or a table of `columns`. */
export function printList(objects: unknown[], columns: string[], opts: OutputOptions): void {
  const fields = fieldsOf(opts);
  if (opts.output === 'json' || opts.output === 'yaml') {
    process.stdout.write(serialise(fields ? objects.map((o) => only(o, fields)) : objects, opts.output));
    return;
  }
  const cols = fields ?? columns;
  process.stdout.write(
    table(
      cols,
      objects.map((o) => cols.map((c) => cell(human(c, pick(o, c))))),
    ),
  );
}

/** One object: as the API gave it (json, yaml) or a FIELD VALUE table. */
export function printObject(obj: unknown, opts: OutputOptions): void {
  const fields = fieldsOf(opts);
  const shown = only(obj, fields);
  if (opts.output === 'json' || opts.output === 'yaml') {
    process.stdout.write(serialise(shown, opts.output));
    return;
  }
  if (shown === null || typeof shown !== 'object' || Array.isArray(shown)) {
    process.stdout.write(serialise(shown, 'json'));
    return;
  }
  const entries = Object.entries(shown as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b));
  process.stdout.write(
    table(
      ['field', 'value'],
      entries.map(([k, v]) => [k, cell(human(k, v))]),
    ),
  );
}
