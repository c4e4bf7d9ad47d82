/** A mistake in the command line: said in one line, without a stack trace; exit status 2. */
export class UsageError extends Error {}

/** Something the user asked for that failed (a name that matches nothing, a wait that timed out): exit status 1. */
export class CliError extends Error {}

export interface ApiErrorItem {
  error_message?: string;
  error_point?: string | null;
  error_type?: string;
}

/** An API answer of 4xx/5xx, with the API's error array when it sent one: exit status 1. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly items: ApiErrorItem[],
  ) {
    super(items.length ? items.map(describe).join('\n') : `HTTP ${status}`);
  }
}

/** error_message (error_point: cpu) [validation] */
function describe(e: ApiErrorItem): string {
  const point = e.error_point ? ` (error_point: ${e.error_point})` : '';
  return `${e.error_message ?? 'error'}${point}${e.error_type ? ` [${e.error_type}]` : ''}`;
}
