/** YAML for plain JSON values (what the API returns): block style, strings quoted whenever they could be misread. */
export function toYaml(value: unknown): string {
  return lines(value, 0).join('\n') + '\n';
}

const PLAIN = /^[A-Za-z_./][A-Za-z0-9_ ./@()+=-]*$/;
const RESERVED = /^(?:true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  // JSON's double-quoted strings are valid YAML double-quoted scalars, escapes included.
  return PLAIN.test(s) && !s.endsWith(' ') && !RESERVED.test(s) ? s : JSON.stringify(s);
}

const isBlock = (v: unknown): v is object => v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
const empty = (v: object) => (Array.isArray(v) ? '[]' : '{}');

function lines(v: unknown, indent: number): string[] {
  const pad = ' '.repeat(indent);
  if (v === null || typeof v !== 'object') return [pad + scalar(v)];
  if (!isBlock(v)) return [pad + empty(v)];
  const out: string[] = [];
  if (Array.isArray(v)) {
    for (const item of v) {
      if (!isBlock(item)) out.push(`${pad}- ${item !== null && typeof item === 'object' ? empty(item) : scalar(item)}`);
      else {
        // The first line of the item goes on the dash's line, the rest under it.
        const inner = lines(item, indent + 2);
        out.push(`${pad}- ${inner[0]!.slice(indent + 2)}`, ...inner.slice(1));
      }
    }
    return out;
  }
  for (const [k, val] of Object.entries(v)) {
    const key = scalar(k);
    if (isBlock(val)) out.push(`${pad}${key}:`, ...lines(val, Array.isArray(val) ? indent : indent + 2));
    else out.push(`${pad}${key}: ${val !== null && typeof val === 'object' ? empty(val) : scalar(val)}`);
  }
  return out;
}
