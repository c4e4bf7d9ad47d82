/** The API's error format: always a JSON array of these. */
export interface WireError {
  error_message: string;
  error_point: string | null;
  error_type: ErrorType;
}

export type ErrorType = 'validation' | 'notexist' | 'backend' | 'permission' | 'database' | 'concurrency' | 'billing' | 'payment' | 'ratelimit';

const STATUS: Record<ErrorType, number> = {
  validation: 400,
  notexist: 404,
  permission: 403,
  billing: 402,
  payment: 402,
  concurrency: 503,
  backend: 500,
  database: 500,
  ratelimit: 429,
};

/**
 * The response header that names each error's stable code, in the order of the body's array (comma-separated). The body
 * stays CloudSigma's exact three fields, which clients and the dumps compare key by key; the code is for clients and
 * tests that must tell errors apart without matching their wording, which may change.
 */
export const ERROR_CODE_HEADER = 'x-opensigma-error-code';

export class ApiError extends Error {
  readonly statusCode: number;
  readonly errors: WireError[];
  /** Headers the answer carries, among them ERROR_CODE_HEADER. */
  readonly headers: Record<string, string>;

  constructor(
    /** stable, one per kind in the catalogue below (OS_ERR_*) */
    readonly code: ErrorCode,
    type: ErrorType,
    message: string,
    point: string | null = null,
    statusCode?: number,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.statusCode = statusCode ?? STATUS[type];
    this.errors = [{ error_message: message, error_point: point, error_type: type }];
    this.headers = { ...headers, [ERROR_CODE_HEADER]: code };
  }

  /** Several validation errors in one response. */
  static many(errors: WireError[], statusCode = 400, code: ErrorCode = 'OS_ERR_INVALID'): ApiError {
    const e = new ApiError(code, errors[0]!.error_type, errors[0]!.error_message, errors[0]!.error_point, statusCode);
    (e as { errors: WireError[] }).errors = errors;
    e.headers[ERROR_CODE_HEADER] = errors.map(() => code).join(',');
    return e;
  }
}

/**
 * Every kind of error the API answers, with its stable code (as Fastify's FST_ERR_*): a code never changes meaning
 * and is never reused, whatever happens to the wording.
 */
export const ERROR_CODES = [
  'OS_ERR_REQUIRED',
  'OS_ERR_INVALID',
  'OS_ERR_SCHEMA',
  'OS_ERR_BAD_JSON',
  'OS_ERR_BAD_URL',
  'OS_ERR_BAD_HTTP',
  'OS_ERR_NOT_FOUND',
  'OS_ERR_NO_ROUTE',
  'OS_ERR_METHOD_NOT_ALLOWED',
  'OS_ERR_UNAUTHORIZED',
  'OS_ERR_CSRF',
  'OS_ERR_PERMISSION',
  'OS_ERR_WRONG_STATE',
  'OS_ERR_QUOTA_EXCEEDED',
  'OS_ERR_CONCURRENCY',
  'OS_ERR_NO_CAPACITY',
  'OS_ERR_BUSY',
  'OS_ERR_RATE_LIMITED',
  'OS_ERR_LOGIN_THROTTLED',
  'OS_ERR_BODY_TOO_LARGE',
  'OS_ERR_BODY_TIMEOUT',
  'OS_ERR_REQUEST_TIMEOUT',
  'OS_ERR_HEADERS_TOO_LARGE',
  'OS_ERR_UNSUPPORTED_MEDIA_TYPE',
  'OS_ERR_UNSUPPORTED_ENCODING',
  'OS_ERR_BAD_ENCODING',
  'OS_ERR_NOT_ACCEPTABLE',
  'OS_ERR_HTTP',
  'OS_ERR_BACKEND',
  'OS_ERR_INJECTED_FAULT',
  'OS_ERR_POOL_EXHAUSTED',
  'OS_ERR_IP_NOT_YOURS',
  'OS_ERR_IP_IN_USE',
  'OS_ERR_VLAN_NOT_YOURS',
  'OS_ERR_DYNAMIC_IP',
  'OS_ERR_CHUNK_UPLOADED',
  'OS_ERR_STORAGE_FAILED',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The catalogue: every error the API raises is built here, so wording stays consistent and each kind keeps its code. */
export const errors = {
  required: (point: string) => new ApiError('OS_ERR_REQUIRED', 'validation', 'This field is required', point),
  invalid: (point: string | null, message: string) => new ApiError('OS_ERR_INVALID', 'validation', message, point),
  /** The route schema refused the request (Fastify's validator). */
  schema: (message: string, point: string | null) => new ApiError('OS_ERR_SCHEMA', 'validation', message, point),
  badJson: (detail: string) => new ApiError('OS_ERR_BAD_JSON', 'validation', `Malformed JSON: ${detail}`, null),
  badUrl: () => new ApiError('OS_ERR_BAD_URL', 'validation', 'The URL is not valid: its path has a malformed percent-encoding', null),
  badHttp: () => new ApiError('OS_ERR_BAD_HTTP', 'validation', 'The request is not valid HTTP', null),
  notFound: (what = 'Object') => new ApiError('OS_ERR_NOT_FOUND', 'notexist', `${what} does not exist`, null),
  noRoute: () => new ApiError('OS_ERR_NO_ROUTE', 'notexist', 'The requested URL was not found', null),
  methodNotAllowed: (allowed: string[]) =>
    new ApiError('OS_ERR_METHOD_NOT_ALLOWED', 'validation', 'Method not allowed', null, 405, { allow: allowed.join(',') }),
  unauthorized: () =>
    new ApiError('OS_ERR_UNAUTHORIZED', 'permission', 'Authentication credentials were not provided or are not valid', null, 401, {
      'www-authenticate': 'Basic realm="users"',
    }),
  csrf: () => new ApiError('OS_ERR_CSRF', 'permission', 'CSRF token missing or incorrect', null, 403),
  permission: (message: string, point: string | null = null) => new ApiError('OS_ERR_PERMISSION', 'permission', message, point),
  /** An action refused in the object's current state, in CloudSigma's words (domain/server-lifecycle.ts refusalMessage). */
  wrongState: (message: string, point: string | null = null) => new ApiError('OS_ERR_WRONG_STATE', 'permission', message, point),
  quotaExceeded: (amount: string) => new ApiError('OS_ERR_QUOTA_EXCEEDED', 'permission', `Quota exceeded: this account may hold at most ${amount}`, null, 403),
  concurrency: (message = 'Another operation is in progress on this object, retry later') => new ApiError('OS_ERR_CONCURRENCY', 'concurrency', message, null),
  capacity: (message = 'No host has the capacity to start this server') => new ApiError('OS_ERR_NO_CAPACITY', 'concurrency', message, null),
  /** Too much of one costly kind of work at once (password checks): retry in a moment. */
  busy: (message: string, retryAfter: number) => new ApiError('OS_ERR_BUSY', 'concurrency', message, null, 503, { 'retry-after': String(retryAfter) }),
  rateLimited: (method: string, retryAfter: number) =>
    new ApiError('OS_ERR_RATE_LIMITED', 'ratelimit', `Rate limit of ${method} requests per minute exceeded`, null, 429, { 'retry-after': String(retryAfter) }),
  loginThrottled: (retryAfter: number) =>
    new ApiError('OS_ERR_LOGIN_THROTTLED', 'ratelimit', 'Too many failed logins: try again later', null, 429, { 'retry-after': String(retryAfter) }),
  bodyTooLarge: (limit: number) => new ApiError('OS_ERR_BODY_TOO_LARGE', 'validation', `Request body is larger than ${limit} bytes`, null, 413),
  bodyTimeout: (timeoutMs: number) =>
    new ApiError('OS_ERR_BODY_TIMEOUT', 'validation', `The request body was not received within ${timeoutMs} ms`, null, 408, { connection: 'close' }),
  requestTimeout: () => new ApiError('OS_ERR_REQUEST_TIMEOUT', 'validation', 'The request was not received in time', null, 408),
  headersTooLarge: () => new ApiError('OS_ERR_HEADERS_TOO_LARGE', 'validation', 'The request headers are too large', null, 431),
  unsupportedMediaType: (type: string) =>
    new ApiError(
      'OS_ERR_UNSUPPORTED_MEDIA_TYPE',
      'validation',
      `Unsupported content type ${type ? JSON.stringify(type.slice(0, 100)) : '(none)'}: bodies are application/json`,
      null,
      415,
    ),
  unsupportedEncoding: (encoding: string) =>
    new ApiError(
      'OS_ERR_UNSUPPORTED_ENCODING',
      'validation',
      `Unsupported content encoding ${JSON.stringify(encoding.slice(0, 100))}: use gzip or deflate`,
      null,
      415,
    ),
  badEncoding: (encoding: string) => new ApiError('OS_ERR_BAD_ENCODING', 'validation', `The request body is not valid ${encoding.slice(0, 100)}`, null, 400),
  notAcceptable: () => new ApiError('OS_ERR_NOT_ACCEPTABLE', 'validation', 'Not acceptable: this API answers application/json', null, 406),
  /** An HTTP-level refusal Fastify raised that no other kind covers (a status below 500). */
  http: (statusCode: number, message: string) => new ApiError('OS_ERR_HTTP', 'validation', message, null, statusCode),
  backend: () => new ApiError('OS_ERR_BACKEND', 'backend', 'unknown error', null),
  /**
   * The drive storage refused bytes; the message says why, never a path. Full is 507 Insufficient Storage; anything
   * else (read-only, not mounted, I/O errors) is 503: the storage is unavailable, and the same request may work later.
   */
  storageFailed: (message: string, full = false) => new ApiError('OS_ERR_STORAGE_FAILED', 'backend', message, null, full ? 507 : 503),
  /** An answer set by an administrator's fault rule (POST /opensigma/faults/). */
  injectedFault: (status: number, error: WireError) => new ApiError('OS_ERR_INJECTED_FAULT', error.error_type, error.error_message, error.error_point, status),
  poolExhausted: (what: string, setting: string) =>
    new ApiError('OS_ERR_POOL_EXHAUSTED', 'concurrency', `No free ${what} left: the operator's pool (${setting}) is used up`, null),
  ipNotYours: (ip: string, point: string) =>
    new ApiError('OS_ERR_IP_NOT_YOURS', 'validation', `IP address ${ip} is not one of your IPs: buy one with an ip subscription`, point),
  ipInUse: (ip: string, server: string, point: string) =>
    new ApiError('OS_ERR_IP_IN_USE', 'permission', `IP address ${ip} is already attached to server ${server}; detach it there first`, point),
  vlanNotYours: (vlan: string) =>
    new ApiError('OS_ERR_VLAN_NOT_YOURS', 'validation', `VLAN ${vlan} is not one of your VLANs: buy one with a vlan subscription`, 'nics.vlan'),
  dynamicIp: (ip: string) =>
    new ApiError('OS_ERR_DYNAMIC_IP', 'permission', `IP address ${ip} is a dynamic (DHCP) address of a running server and cannot be edited`, null),
  chunkUploaded: (index: number) => new ApiError('OS_ERR_CHUNK_UPLOADED', 'validation', `Chunk ${index} is already uploaded`, 'chunk_number', 416),
} satisfies Record<string, (...args: never[]) => ApiError>;
