import autocannon from 'autocannon';

export interface LoadResult {
  reqPerSec: number;
  p99: number;
  non2xx: number;
  total: number;
  /** CPU the server spent per request (ms): what the figure would be on a free core, whatever else runs. */
  cpuMsPerReq: number;
}

export interface LoadSpec {
  url: string;
  durationS: number;
  connections?: number;
  headers?: Record<string, string>;
  /** Requests each connection cycles through; `setup` may rewrite one per call (per-connection context). */
  requests?: Array<{ method: string; path: string; body?: string; setup?: (ctx: Record<string, any>) => { path?: string; body?: string } }>;
}

/** One autocannon run: mean requests per second and the 99th percentile latency in ms. */
export async function load(spec: LoadSpec, cpuSeconds: () => number = () => NaN): Promise<LoadResult> {
  const u = new URL(spec.url);
  // Warm-up first (JIT, caches, the first slow password check), not measured.
  await autocannon({ ...options(spec, u), duration: Math.min(2, spec.durationS) });
  const cpu0 = cpuSeconds();
  const result = await autocannon(options(spec, u));
  const cpu = cpuSeconds() - cpu0;
  return {
    reqPerSec: result.requests.average,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    total: result.requests.total,
    cpuMsPerReq: (cpu * 1000) / Math.max(1, result.requests.total),
  };
}

function options(spec: LoadSpec, u: URL): Record<string, unknown> {
  return {
    url: `${u.protocol}//${u.host}`,
    connections: spec.connections ?? 10,
    duration: spec.durationS,
    headers: spec.headers,
    requests: (spec.requests ?? [{ method: 'GET', path: u.pathname + u.search }]).map((r) => {
      const req: Record<string, unknown> = { method: r.method, path: r.path };
      if (r.body) Object.assign(req, { body: r.body, headers: { ...spec.headers, 'content-type': 'application/json' } });
      if (r.setup) req.setupRequest = (q: any, ctx: any) => ({ ...q, ...r.setup!(ctx) });
      return req;
    }),
  };
}
