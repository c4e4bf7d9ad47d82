import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, minimalServer, startServer, type TestServer } from './helpers/harness.ts';

/**
 * Malformed requests to every route of the OpenAPI document, as the admin (so they reach the handlers): wrong types,
 * huge numbers, unicode, deep nesting, long strings, odd filters and pages. Each must be answered within 5 s with
 * something other than a 5xx, and every error as the API's error array. The one 5xx allowed is 503 with a
 * `concurrency` error: CloudSigma's own answer for "no capacity" or "retry later", which malformed sizes can provoke.
 * Seeded, so a failure names a request that fails again.
 */
const REQUESTS = 2000;
const SEED = Number(process.env.OPENSIGMA_FUZZ_SEED ?? 20261203);

function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const FIELDS = [
  'name',
  'cpu',
  'mem',
  'smp',
  'vnc_password',
  'drives',
  'nics',
  'meta',
  'tags',
  'size',
  'media',
  'storage_type',
  'resources',
  'grantees',
  'rules',
  'public_key',
  'private_key',
  'algorithm_type',
  'resource',
  'amount',
  'period',
  'auto_renew',
  'hypervisor',
  'cpu_type',
  'pubkeys',
  'context',
  'objects',
  'uuid',
  'username',
  'password',
  'drive',
  'boot_order',
  'dev_channel',
  'device',
  'ip_v4_conf',
  'vlan',
  'model',
  'mac',
  'conf',
  'ip',
  'permission',
  'email',
  'cpu_model',
  'affinities',
  'requirements',
  'allocation_pool',
  'enable_numa',
  'firewall_policy',
  'runtime',
  'owner',
  'status',
  'end_time',
  'start_time',
];
const ACTIONS = [
  'start',
  'stop',
  'shutdown',
  'restart',
  'clone',
  'resize',
  'open_vnc',
  'close_vnc',
  'open_console',
  'close_console',
  'extend',
  'auto_renew',
  'upload_chunk',
  'login',
  'logout',
  'attach',
  '',
  'x'.repeat(300),
  'ß',
];

for (const _ of [0]) {
  describe('fuzzed requests never break the API [sqlite]', () => {
    let t: TestServer;
    const ids: string[] = [];
    before(async () => {
      t = await startServer({
        OPENSIGMA_RATE_GET: '1000000',
        OPENSIGMA_RATE_POST: '1000000',
        OPENSIGMA_RATE_PUT: '1000000',
        OPENSIGMA_RATE_DELETE: '1000000',
        OPENSIGMA_SIM_DELAY_MS: '10',
        OPENSIGMA_LOGIN_FAILURES_PER_SOURCE: '1000000',
        OPENSIGMA_LOGIN_FAILURES_PER_ACCOUNT: '1000000',
      });
      // Real objects, so that some requests get past "not found" into the handlers.
      const made = await Promise.all([
        t.call('POST', '/servers/', { objects: [minimalServer('fuzz-a'), minimalServer('fuzz-b')] }),
        t.call('POST', '/drives/', { objects: [{ name: 'fuzz-d', size: 536870912, media: 'disk' }] }),
        t.call('POST', '/tags/', { objects: [{ name: 'fuzz-t' }] }),
        t.call('POST', '/keypairs/', { objects: [{ name: 'fuzz-k', algorithm_type: 'ed25519' }] }),
      ]);
      for (const m of made) {
        assert.equal(m.status, 201, m.text);
        for (const o of m.body.objects) ids.push(o.uuid);
      }
    });
    after(async () => t.close());

    test(`${REQUESTS} malformed requests over every route: no 5xx, every error an array, each answered within 5 s`, async () => {
      const rnd = prng(SEED);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const deep = (n: number, leaf: unknown): unknown => {
        let v = leaf;
        for (let i = 0; i < n; i++) v = rnd() < 0.5 ? [v] : { [pick(FIELDS)]: v };
        return v;
      };
      const scalar = (): unknown =>
        pick<() => unknown>([
          () => null,
          () => true,
          () => 0,
          () => -1,
          () => 1e308,
          () => -1e308,
          () => 2 ** 63,
          () => 1.5,
          () => Math.floor(rnd() * 1e12),
          () => '',
          () => 'x'.repeat(Math.floor(rnd() * 100_000)),
          () => '\u0000\u202e\ud83d\ude00 ñ 漢字',
          () => '\ud800',
          () => '../../etc/passwd',
          () => '00000000-0000-4000-8000-000000000000',
          () => pick(ids),
          () => `/api/2.0/servers/${pick(ids)}/`,
          () => '1' + '0'.repeat(400),
          () => 'NaN',
        ])();
      const value = (depth = 0): unknown => {
        const r = rnd();
        if (depth > 3 || r < 0.5) return scalar();
        if (r < 0.65) return Array.from({ length: Math.floor(rnd() * 5) }, () => value(depth + 1));
        if (r < 0.7) return Array.from({ length: 500 }, () => scalar());
        if (r < 0.75) return deep(Math.floor(rnd() * 3000), scalar());
        return object(depth + 1);
      };
      const object = (depth = 0): Record<string, unknown> => {
        const o: Record<string, unknown> = {};
        for (let i = Math.floor(rnd() * 6); i >= 0; i--) o[rnd() < 0.9 ? pick(FIELDS) : pick(['__proto__', 'constructor', '', 'é'.repeat(50)])] = value(depth);
        return o;
      };
      const body = (): { type?: string; text?: string } => {
        const r = rnd();
        if (r < 0.1) return {};
        if (r < 0.15) return { type: 'application/json', text: pick(['{', '[1,', '"', 'nul', '{"a":1}}', '\u0000', '{"a":' + '['.repeat(100_000)]) };
        if (r < 0.2) return { type: pick(['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream']), text: 'a=b' };
        if (r < 0.25) return { type: 'application/json', text: `{"objects": [{"meta": ${'['.repeat(100_000)}1${']'.repeat(100_000)}}]}` };
        if (r < 0.55) return { type: 'application/json', text: JSON.stringify({ objects: Array.from({ length: Math.floor(rnd() * 4) }, () => object()) }) };
        if (r < 0.85) return { type: 'application/json', text: JSON.stringify(object()) };
        return { type: 'application/json', text: JSON.stringify(value()) };
      };
      const query = (): string => {
        const parts: string[] = [];
        for (let i = Math.floor(rnd() * 4); i >= 0; i--) {
          const k = pick([
            'limit',
            'offset',
            'fields',
            'name',
            'name__contains',
            'uuid',
            'tag',
            'tag__name',
            'order_by',
            'status',
            'do',
            'recurse',
            'avoid',
            'format',
            'drive',
            'resumableChunkNumber',
            'poll_time_gt',
            '__proto__',
          ]);
          const v =
            k === 'do'
              ? pick(ACTIONS)
              : pick<() => string>([
                  () => String(Math.floor(rnd() * 1e6)),
                  () => '-1',
                  () => '1e400',
                  () => '99999999999999999999999',
                  () => 'x'.repeat(5000),
                  () => Array.from({ length: 150 }, (_, j) => `v${j}`).join(','),
                  () => '\\,\\\\,,,',
                  () => '%ZZ',
                  () => '%00',
                  () => pick(ids),
                  () => '-name',
                  () => 'ñ漢😀',
                  () => '',
                ])();
          parts.push(`${encodeURIComponent(k)}=${/%|\\/.test(v) && rnd() < 0.5 ? v : encodeURIComponent(v)}`);
        }
        return parts.join('&');
      };
      const idFor = () =>
        pick<() => string>([
          () => pick(ids),
          () => pick(ids),
          () => '00000000-0000-4000-8000-000000000000',
          () => 'x',
          () => '1'.repeat(500),
          () => '%E2%82',
          () => 'ñ',
          () => '..',
          () => '198.51.100.1',
          () => '1',
        ])();

      const doc = (await (await fetch(`${t.api}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
      const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops)
          .map((m) => m.toUpperCase())
          .filter((m) => m !== 'HEAD')
          .map((method) => ({ method, path })),
      );
      assert.ok(routes.length > 80, `${routes.length} routes`);

      const authorization = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;
      const failures: string[] = [];
      let next = 0;
      const worker = async () => {
        while (next < REQUESTS && failures.length < 5) {
          const i = next++;
          // Every route gets its turn; the rest are random.
          const { method, path } = i < routes.length * 3 ? routes[i % routes.length]! : pick(routes);
          const url = `${t.url}${path.replace(/\{[^}]+\}/g, () => idFor())}${rnd() < 0.8 ? `?${query()}` : ''}`;
          let b = method === 'GET' ? {} : method === 'DELETE' && rnd() < 0.8 ? {} : body();
          // Under the body limit: over it the server stops reading and fetch reports the cut write out of band.
          if (Buffer.byteLength(b.text ?? '') > 1_000_000) b = { type: 'application/json', text: '{"objects": [{"name": "was too large"}]}' };
          const what = `#${i} ${method} ${url.slice(0, 200)} ${b.type ?? ''} ${(b.text ?? '').slice(0, 200)}`;
          const started = Date.now();
          try {
            // A download asks for its first KiB only: the whole drive is half a GiB of zeros.
            const range: Record<string, string> = path.endsWith('/download/') ? { range: 'bytes=0-1023' } : {};
            const res = await fetch(url, {
              method,
              headers: { authorization, ...range, ...(b.type ? { 'content-type': b.type } : {}) },
              body: b.text,
              signal: AbortSignal.timeout(5000),
            });
            const text = await res.text();
            const took = Date.now() - started;
            if (!/json/.test(res.headers.get('content-type') ?? '') && res.status < 400) continue; // a drive's bytes, an upload's uuid
            if (took > 5000) failures.push(`${what}: took ${took} ms`);
            const parsed = (() => {
              try {
                return JSON.parse(text);
              } catch {
                return undefined;
              }
            })();
            const isErrorArray =
              Array.isArray(parsed) &&
              parsed.length > 0 &&
              parsed.every((e) => typeof e?.error_message === 'string' && 'error_point' in e && typeof e.error_type === 'string');
            if (res.status >= 500 && !(res.status === 503 && isErrorArray && parsed[0].error_type === 'concurrency'))
              failures.push(`${what}: ${res.status} ${text.slice(0, 300)}`);
            else if (res.status >= 400 && !isErrorArray) failures.push(`${what}: ${res.status} is not the error array: ${text.slice(0, 300)}`);
          } catch (e) {
            failures.push(`${what}: ${(e as Error).message}`);
          }
        }
      };
      await Promise.all(Array.from({ length: 6 }, worker));
      assert.deepEqual(failures, [], `seed ${SEED}`);
      assert.ok(next >= REQUESTS);
    });
  });
}
