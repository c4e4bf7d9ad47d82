import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.ts';

/** Upper bounds of the latency histogram, in seconds. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const label = (v: string) => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

/**
 * GET /metrics in the Prometheus text format, without auth (scrapers live inside the operator's network).
 * Request counters are this process's; operations, servers and hosts are read from the shared database, so
 * every node reports the same cluster-wide figures for them.
 */
export function registerMetrics(app: FastifyInstance, svc: Services): void {
  const requests = new Map<string, number>();
  const buckets = new Array<number>(BUCKETS.length).fill(0);
  let count = 0;
  let sum = 0;

  app.addHook('onResponse', (req, reply, done) => {
    done();
    if (req.url === '/metrics') return;
    const key = `method="${label(req.method)}",status="${reply.statusCode}"`;
    requests.set(key, (requests.get(key) ?? 0) + 1);
    const s = reply.elapsedTime / 1000;
    count++;
    sum += s;
    for (let i = 0; i < BUCKETS.length; i++) if (s <= BUCKETS[i]!) buckets[i]!++;
  });

  app.get('/metrics', { config: { auth: 'public' }, schema: { hide: true } }, async (_req, reply) => {
    const [ops, servers, hosts, perHost] = await Promise.all([
      svc.store.operations.countByState(),
      svc.store.servers.countByStatus(),
      svc.store.hosts.countByState(),
      svc.store.hosts.listWithUse(),
    ]);
    const out: string[] = [];
    const family = (name: string, type: string, help: string, rows: Array<[string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) out.push(`${name}${labels ? `{${labels}}` : ''} ${v}`);
    };
    family('opensigma_http_requests_total', 'counter', 'HTTP requests answered by this node, by method and status.', [...requests]);
    family('opensigma_http_request_duration_seconds', 'histogram', 'Time to answer HTTP requests on this node.', [
      ...BUCKETS.map((b, i): [string, number] => [`le="${b}"`, buckets[i]!]),
      ['le="+Inf"', count],
    ]);
    // the histogram's series are _bucket, _sum and _count
    for (let i = out.length - BUCKETS.length - 1; i < out.length; i++) out[i] = out[i]!.replace('_seconds{', '_seconds_bucket{');
    out.push(`opensigma_http_request_duration_seconds_sum ${sum}`, `opensigma_http_request_duration_seconds_count ${count}`);
    const byState = (rows: Array<[string, number]>, key: string) => rows.map(([v, n]): [string, number] => [`${key}="${label(v)}"`, n]);
    family(
      'opensigma_operations',
      'gauge',
      'Host operations in the database, by state.',
      ['pending', 'running', 'done', 'failed'].map((s) => [`state="${s}"`, ops[s] ?? 0]),
    );
    family(
      'opensigma_servers',
      'gauge',
      'Servers, by status.',
      byState(
        servers.map((r) => [r.status, r.n]),
        'status',
      ),
    );
    const hostRows = byState(
      hosts.map((r) => [r.state, r.n]),
      'state',
    );
    for (const s of ['up', 'down']) if (!hostRows.some(([l]) => l === `state="${s}"`)) hostRows.push([`state="${s}"`, 0]);
    family('opensigma_hosts', 'gauge', 'Compute hosts, by state.', hostRows);
    // One series per host: what `opensigma hosts list` shows.
    const host = (h: (typeof perHost)[number]) => `host="${label(h.name)}",driver="${label(h.driver)}"`;
    family(
      'opensigma_host_up',
      'gauge',
      'Whether a compute host is up (its agent heartbeats).',
      perHost.map((h) => [host(h), h.state === 'up' ? 1 : 0]),
    );
    family(
      'opensigma_host_drained',
      'gauge',
      'Whether a compute host is drained (takes no new servers).',
      perHost.map((h) => [host(h), h.drained ? 1 : 0]),
    );
    const age = (h: (typeof perHost)[number]) => Math.max(0, (Date.now() - Date.parse(h.heartbeat_at)) / 1000);
    family(
      'opensigma_host_heartbeat_age_seconds',
      'gauge',
      'Seconds since the last heartbeat of a compute host.',
      perHost.map((h) => [host(h), age(h)]),
    );
    family(
      'opensigma_host_cpu_mhz',
      'gauge',
      'CPU capacity of a compute host.',
      perHost.map((h) => [host(h), h.cpu]),
    );
    family(
      'opensigma_host_cpu_used_mhz',
      'gauge',
      'CPU held by the servers placed on a compute host.',
      perHost.map((h) => [host(h), h.used_cpu]),
    );
    family(
      'opensigma_host_mem_bytes',
      'gauge',
      'Memory capacity of a compute host.',
      perHost.map((h) => [host(h), h.mem]),
    );
    family(
      'opensigma_host_mem_used_bytes',
      'gauge',
      'Memory held by the servers placed on a compute host.',
      perHost.map((h) => [host(h), h.used_mem]),
    );
    family(
      'opensigma_host_servers',
      'gauge',
      'Servers placed on a compute host (any but stopped).',
      perHost.map((h) => [host(h), h.servers]),
    );
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8');
    return out.join('\n') + '\n';
  });
}
