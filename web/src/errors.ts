/** The API's error format (src/errors.ts): every failure is an array of these. */
export interface ApiErrorItem {
  error_message: string;
  error_point: string | null;
  error_type: string;
}

export interface PlacedErrors {
  /** messages by the form field they belong to */
  fields: Record<string, string[]>;
  /** messages no field of the form names: shown above the form */
  general: string[];
}

/**
 * Puts each error beside the field its `error_point` names. A point may go deeper than the form does
 * (`nics.ip_v4_conf.conf`, `drives.0.drive`): the longest field name that is a prefix of it (by dotted parts) wins,
 * so a form with a `nics` field shows it there. `aliases` maps points the API uses to the form's own names.
 */
export function placeErrors(errors: ApiErrorItem[], fieldNames: string[], aliases: Record<string, string> = {}): PlacedErrors {
  const out: PlacedErrors = { fields: {}, general: [] };
  const known = new Set(fieldNames);
  for (const e of errors) {
    let field: string | null = null;
    if (e.error_point) {
      const parts = e.error_point.split('.').filter((p) => !/^\d+$/.test(p));
      for (let n = parts.length; n > 0 && !field; n--) {
        const candidate = parts.slice(0, n).join('.');
        const named = aliases[candidate] ?? candidate;
        if (known.has(named)) field = named;
      }
    }
    if (field) (out.fields[field] ??= []).push(e.error_message);
    else out.general.push(e.error_message);
  }
  return out;
}

/** Reads an API answer's body as its error array, whatever it was (a proxy's HTML page, an empty body). */
export function asErrors(status: number, body: unknown): ApiErrorItem[] {
  if (Array.isArray(body) && body.every((e) => e && typeof e === 'object' && 'error_message' in e)) return body as ApiErrorItem[];
  return [{ error_message: `The server answered ${status}`, error_point: null, error_type: 'backend' }];
}
