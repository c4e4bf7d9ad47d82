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

export class ApiError extends Error {
  readonly statusCode: number;
  readonly errors: WireError[];
  readonly headers: Record<string, string>;

  constructor(type: ErrorType, message: string, point: string | null = null, statusCode?: number, headers: Record<string, string> = {}) {
    super(message);
    this.statusCode = statusCode ?? STATUS[type];
    this.errors = [{ error_message: message, error_point: point, error_type: type }];
    this.headers = headers;
  }

  /** Several validation errors in one response. */
  static many(errors: WireError[], statusCode = 400): ApiError {
    const e = new ApiError(errors[0]!.error_type, errors[0]!.error_message, errors[0]!.error_point, statusCode);
    (e as { errors: WireError[] }).errors = errors;
    return e;
  }
}

/** The catalogue: every error the API raises is built here, so wording stays consistent. */
export const errors = {
  required: (point: string) => new ApiError('validation', 'This field is required', point),
  invalid: (point: string | null, message: string) => new ApiError('validation', message, point),
  badJson: (detail: string) => new ApiError('validation', `Malformed JSON: ${detail}`, null),
  notFound: (what = 'Object') => new ApiError('notexist', `${what} does not exist`, null),
  noRoute: () => new ApiError('notexist', 'The requested URL was not found', null),
  methodNotAllowed: (allowed: string[]) => new ApiError('validation', 'Method not allowed', null, 405, { allow: allowed.join(',') }),
  unauthorized: () =>
    new ApiError('permission', 'Authentication credentials were not provided or are not valid', null, 401, {
      'www-authenticate': 'Basic realm="users"',
    }),
  csrf: () => new ApiError('permission', 'CSRF token missing or incorrect', null, 403),
  permission: (message: string, point: string | null = null) => new ApiError('permission', message, point),
  /** The wording CloudSigma uses for an action refused in the current state. */
  wrongState: (action: string, internal: string, expected: string) =>
    new ApiError('permission', `Cannot ${action} guest in state "${internal}". Guest should be in state "${expected}"`, null),
  concurrency: (message = 'Another operation is in progress on this object, retry later') => new ApiError('concurrency', message, null),
  capacity: (message = 'No host has the capacity to start this server') => new ApiError('concurrency', message, null),
  rateLimited: (method: string, retryAfter: number) =>
    new ApiError('ratelimit', `Rate limit of ${method} requests per minute exceeded`, null, 429, { 'retry-after': String(retryAfter) }),
  bodyTooLarge: (limit: number) => new ApiError('validation', `Request body is larger than ${limit} bytes`, null, 413),
  unsupportedMediaType: (type: string) =>
    new ApiError('validation', `Unsupported content type ${type ? JSON.stringify(type.slice(0, 100)) : '(none)'}: bodies are application/json`, null, 415),
  notAcceptable: () => new ApiError('validation', 'Not acceptable: this API answers application/json', null, 406),
  backend: () => new ApiError('backend', 'unknown error', null),
  poolExhausted: (what: string, setting: string) => new ApiError('concurrency', `No free ${what} left: the operator's pool (${setting}) is used up`, null),
  ipNotYours: (ip: string, point: string) => new ApiError('validation', `IP address ${ip} is not one of your IPs: buy one with an ip subscription`, point),
  ipInUse: (ip: string, server: string, point: string) =>
    new ApiError('permission', `IP address ${ip} is already attached to server ${server}; detach it there first`, point),
  vlanNotYours: (vlan: string) => new ApiError('validation', `VLAN ${vlan} is not one of your VLANs: buy one with a vlan subscription`, 'nics.vlan'),
  dynamicIp: (ip: string) => new ApiError('permission', `IP address ${ip} is a dynamic (DHCP) address of a running server and cannot be edited`, null),
};
