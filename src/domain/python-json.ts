/**
 * JSON as Python's json.dumps writes it with default settings, which is what the CloudSigma guest protocol sends:
 * ", " and ": " separators, non-ASCII escaped as \uXXXX, and floats that always show a decimal point.
 */

/** A number the guest sees as a float (0.0, not 0). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export const pyFloat = (v: number) => new PyFloat(v);

/** Python's json string escaping (ensure_ascii), without the surrounding quotes. */
export function escapeAscii(s: string): string {
  return JSON.stringify(s)
    .slice(1, -1)
    .replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function floatRepr(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  return Number.isInteger(v) && Math.abs(v) < 1e16 ? v.toFixed(1) : String(v);
}

export function pyJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (v instanceof PyFloat) return floatRepr(v.value);
  if (typeof v === 'string') return `"${escapeAscii(v)}"`;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : floatRepr(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map(pyJson).join(', ')}]`;
  if (typeof v === 'object')
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `"${escapeAscii(k)}": ${pyJson(x)}`)
      .join(', ')}}`;
  return 'null';
}
