import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';

/** Every error is an array of exactly {error_message, error_point, error_type}. */
function assertError(r: { status: number; body: any; text: string; headers: Headers }, status: number, type: string, point?: string | null, code?: string) {
  assert.equal(r.status, status, r.text);
  // The stable code rides in a header, one per entry, so the body keeps CloudSigma's three fields exactly.
  assert.match(r.headers.get('x-opensigma-error-code') ?? '', /^OS_ERR_[A-Z_]+(,OS_ERR_[A-Z_]+)*$/, r.text);
  if (code) assert.equal(r.headers.get('x-opensigma-error-code'), code, r.text);
  assert.ok(Array.isArray(r.body) && r.body.length >= 1, `not an error array: ${r.text}`);
  for (const e of r.body) {
    assert.deepEqual(Object.keys(e).sort(), ['error_message', 'error_point', 'error_type']);
    assert.equal(typeof e.error_message, 'string');
    assert.ok(e.error_message.length > 0);
  }
  assert.equal(r.body[0].error_type, type, r.text);
  if (point !== undefined) assert.equal(r.body[0].error_point, point, r.text);
}

const base = minimalServer('err');
const without = (k: string) => Object.fromEntries(Object.entries(base).filter(([x]) => x !== k));

for (const db of databases()) {
  describe(`error format [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_BODY_LIMIT: '65536' }, db);
    });
    after(async () => t.close());

    test('a missing required field is 400 "This field is required" pointing at it', async () => {
      for (const k of ['name', 'cpu', 'mem', 'vnc_password']) {
        const r = await t.call('POST', '/servers/', { objects: [without(k)] });
        assertError(r, 400, 'validation', k, 'OS_ERR_REQUIRED');
        assert.equal(r.body[0].error_message, 'This field is required');
      }
    });

    test('wrong types and bad choices point at the field', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ cpu: 'fast' }, 'cpu'],
        [{ cpu: 1.5 }, 'cpu'],
        [{ mem: true }, 'mem'],
        [{ smp: [] }, 'smp'],
        [{ name: {} }, 'name'],
        // eslint-disable-next-line no-loss-of-precision -- a number JSON can carry and JavaScript cannot: Infinity
        [{ vnc_password: 12.5e400 }, 'vnc_password'],
        [{ context: 'maybe' }, 'context'],
        [{ meta: 'x' }, 'meta'],
        [{ meta: { k: { nested: 1 } } }, 'meta'],
        [{ meta: { ['k'.repeat(33)]: 'v' } }, 'meta'],
        [{ cpu_model: 'pentium' }, 'cpu_model'],
        [{ nics: {} }, 'nics'],
        [{ nics: [{ model: 'tulip' }] }, 'nics.model'],
        [{ nics: [{ ip_v4_conf: { conf: 'magic' } }] }, 'nics.ip_v4_conf.conf'],
        [{ drives: [{ device: 'virtio', dev_channel: '0:0' }] }, 'drives.drive'],
        [{ drives: [{ drive: 'not-a-uuid', device: 'virtio', dev_channel: '0:0' }] }, 'drives.drive'],
        [{ drives: [{ drive: '00000000-0000-4000-8000-000000000000', device: 'sata', dev_channel: '0:0' }] }, 'drives.device'],
        [{ drives: [{ drive: '00000000-0000-4000-8000-000000000000', device: 'ide', dev_channel: '2:0' }] }, 'drives.dev_channel'],
        [{ drives: [{ drive: '00000000-0000-4000-8000-000000000000', device: 'virtio', dev_channel: '0:0' }] }, 'drives.drive'],
        [{ tags: ['00000000-0000-4000-8000-000000000000'] }, 'tags'],
        [{ pubkeys: 'abc' }, 'pubkeys'],
        [{ requirements: 'fast' }, 'requirements'],
      ];
      for (const [patch, point] of cases) {
        const r = await t.call('POST', '/servers/', { ...base, ...patch });
        assertError(r, 400, 'validation', point);
      }
    });

    test('cpu, mem and smp are checked against the capabilities', async () => {
      const caps = (await t.call('GET', '/capabilities/')).body.hosts.amd;
      for (const [patch, point] of [
        [{ cpu: caps.cpu.min - 1 }, 'cpu'],
        [{ cpu: caps.cpu.max + 1, smp: 32 }, 'cpu'],
        [{ mem: caps.mem.min - 1 }, 'mem'],
        [{ mem: caps.mem.max + 1 }, 'mem'],
        [{ smp: caps.smp.max + 1, cpu: 40000 }, 'smp'],
        [{ smp: 0 }, 'smp'],
        [{ cpu: 8000, smp: 2 }, 'cpu'],
        [{ cpu: 1500, smp: 2 }, 'cpu'],
      ] as Array<[Record<string, unknown>, string]>) {
        assertError(await t.call('POST', '/servers/', { ...base, ...patch }), 400, 'validation', point);
      }
      assert.equal((await t.call('POST', '/servers/', { ...base, cpu: 2000, smp: 2 })).status, 201);
      assert.equal((await t.call('POST', '/servers/', { ...base, cpu: 250 })).status, 201);
    });

    test('hypervisor and cpu_type must be a pair of the capabilities; defaults kvm + amd, amd also with only a hypervisor', async () => {
      assertError(await t.call('POST', '/servers/', { ...base, hypervisor: 'xen' }), 400, 'validation', 'hypervisor');
      assertError(await t.call('POST', '/servers/', { ...base, cpu_type: 'sparc_t5' }), 400, 'validation', 'cpu_type');
      assertError(await t.call('POST', '/servers/', { ...base, hypervisor: 'kvm', cpu_type: 'vmware' }), 400, 'validation', 'cpu_type');
      const d = (await t.call('POST', '/servers/', base)).body.objects[0];
      assert.equal(d.hypervisor, 'kvm');
      assert.equal(d.cpu_type, 'amd');
      const h = (await t.call('POST', '/servers/', { ...base, hypervisor: 'kvm' })).body.objects[0];
      assert.equal(h.cpu_type, 'amd');
      const i = (await t.call('POST', '/servers/', { ...base, cpu_type: 'intel' })).body.objects[0];
      assert.equal(i.cpu_type, 'intel');
      // An edit that changes only the hypervisor keeps the pair valid.
      const e = await t.call('PUT', `/servers/${i.uuid}/`, { hypervisor: 'kvm' });
      assert.equal(e.status, 200, e.text);
      assert.equal(e.body.cpu_type, 'intel');
    });

    test('gpus and epcs are checked against the capabilities', async () => {
      assertError(await t.call('POST', '/servers/', { ...base, gpus: [{ model: 'voodoo2' }] }), 400, 'validation', 'gpus.model');
      assertError(await t.call('POST', '/servers/', { ...base, gpus: [{}] }), 400, 'validation', 'gpus.model');
      assertError(
        await t.call('POST', '/servers/', { ...base, gpus: [{ model: 'nvidia_a100' }, { model: 'nvidia_a100' }, { model: 'nvidia_a100' }] }),
        400,
        'validation',
        'gpus',
      );
      assertError(await t.call('POST', '/servers/', { ...base, epcs: [{ size: 68719476736 }, { size: 1 }] }), 400, 'validation', 'epcs.size');
      assertError(await t.call('POST', '/servers/', { ...base, epcs: [{ size: 0 }] }), 400, 'validation', 'epcs.size');
      // bigger than a GPU host (capabilities: max_memory_per_host of the model)
      const gpuHostMem = (await t.call('GET', '/capabilities/')).body.gpus.nvidia_a100.max_memory_per_host;
      assertError(await t.call('POST', '/servers/', { ...base, mem: gpuHostMem + 1, gpus: [{ model: 'nvidia_a100' }] }), 400, 'validation', 'mem');
      assert.equal((await t.call('POST', '/servers/', { ...base, mem: gpuHostMem + 1 })).status, 201);
      const ok = await t.call('POST', '/servers/', { ...base, gpus: [{ model: 'nvidia_a100' }], epcs: [{ size: 1073741824 }] });
      assert.equal(ok.status, 201, ok.text);
      assert.deepEqual(ok.body.objects[0].gpus, [{ gpu: null, model: 'nvidia_a100' }]);
      assert.deepEqual(ok.body.objects[0].epcs, [{ size: 1073741824 }]);
    });

    test('401 without or with wrong credentials', async () => {
      const none = await fetch(`${t.api}/servers/`);
      assert.equal(none.status, 401);
      const body = (await none.json()) as any;
      assertError({ status: 401, body, text: '', headers: none.headers }, 401, 'permission', null, 'OS_ERR_UNAUTHORIZED');
      assertError(await t.as(ADMIN.email, 'wrong')('GET', '/servers/'), 401, 'permission', undefined, 'OS_ERR_UNAUTHORIZED');
      assertError(await t.call('GET', '/servers/', undefined, { authorization: 'Bearer nonsense' }), 401, 'permission', undefined, 'OS_ERR_UNAUTHORIZED');
      assertError(await t.call('GET', '/servers/', undefined, { authorization: 'Basic !!!' }), 401, 'permission', undefined, 'OS_ERR_UNAUTHORIZED');
    });

    test("403 for wrong-state actions in CloudSigma's words", async () => {
      const s = (await t.call('POST', '/servers/', base)).body.objects[0];
      const stop = await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      assertError(stop, 403, 'permission', null, 'OS_ERR_WRONG_STATE');
      assert.equal(stop.body[0].error_message, `Cannot stop guest in state "stopped". Guest should be in state "['started', 'running_legacy']"`);
      assertError(await t.call('POST', `/servers/${s.uuid}/action/?do=shutdown`), 403, 'permission');
      assertError(await t.call('POST', `/servers/${s.uuid}/action/?do=open_vnc`), 403, 'permission');
      assertError(await t.call('POST', `/servers/${s.uuid}/action/?do=open_console`), 403, 'permission');
      assertError(await t.call('POST', `/servers/${s.uuid}/action/?do=restart`), 403, 'permission');
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      await waitForStatus(t, s.uuid, 'running');
      const start = await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      assertError(start, 403, 'permission', undefined, 'OS_ERR_WRONG_STATE');
      assert.equal(start.body[0].error_message, 'Cannot start guest in state "started". Guest should be in state "stopped"');
      assertError(await t.call('DELETE', `/servers/${s.uuid}/`), 403, 'permission');
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitForStatus(t, s.uuid, 'stopped');
    });

    test('404 notexist for a missing object, a malformed id and an unknown URL', async () => {
      for (const p of [
        '/servers/00000000-0000-4000-8000-000000000000/',
        '/servers/nonsense/',
        '/servers/00000000-0000-4000-8000-000000000000/runtime/',
        '/nothing/',
      ]) {
        assertError(await t.call('GET', p), 404, 'notexist', null);
      }
      assertError(await t.call('PUT', '/servers/00000000-0000-4000-8000-000000000000/', base), 404, 'notexist', undefined, 'OS_ERR_NOT_FOUND');
      assertError(await t.call('DELETE', '/servers/00000000-0000-4000-8000-000000000000/'), 404, 'notexist', undefined, 'OS_ERR_NOT_FOUND');
      assertError(await t.call('POST', '/servers/00000000-0000-4000-8000-000000000000/action/?do=start'), 404, 'notexist', undefined, 'OS_ERR_NOT_FOUND');
    });

    test('405 for a method the URL does not have, with Allow', async () => {
      const r = await t.call('DELETE', '/servers/');
      assertError(r, 405, 'validation', undefined, 'OS_ERR_METHOD_NOT_ALLOWED');
      assert.deepEqual(r.headers.get('allow')!.split(',').sort(), ['GET', 'HEAD', 'POST']);
      assertError(await t.call('PATCH', '/servers/00000000-0000-4000-8000-000000000000/'), 405, 'validation', undefined, 'OS_ERR_METHOD_NOT_ALLOWED');
      assertError(await t.call('PUT', '/capabilities/'), 405, 'validation', undefined, 'OS_ERR_METHOD_NOT_ALLOWED');
    });

    test('413 for a body over the limit; 400 for malformed JSON', async () => {
      const big = await t.call('POST', '/servers/', { ...base, meta: { big: 'x'.repeat(70000) } });
      assertError(big, 413, 'validation', undefined, 'OS_ERR_BODY_TOO_LARGE');
      for (const text of ['{bad json', '{"name": ', '[', '\u0000'])
        assertError(await t.call('POST', '/servers/', text), 400, 'validation', null, 'OS_ERR_BAD_JSON');
      assertError(await t.call('PUT', '/servers/00000000-0000-4000-8000-000000000000/', 'nope'), 400, 'validation');
      assertError(await t.call('POST', '/servers/', '"a string"'), 400, 'validation');
      assertError(await t.call('POST', '/servers/', '[]'), 400, 'validation');
      assertError(await t.call('POST', '/servers/', '[1, 2]'), 400, 'validation');
    });

    test('hostile input is a 400, not a 500: huge page numbers, deep nesting, prototype keys', async () => {
      assertError(await t.call('GET', '/servers/?limit=99999999999999999999999'), 400, 'validation', 'limit');
      assertError(await t.call('GET', '/servers/detail/?offset=99999999999999999999999'), 400, 'validation', 'offset');
      let deep = '1';
      for (let i = 0; i < 30000; i++) deep = `[${deep}]`;
      assertError(
        await t.call('POST', '/servers/', `{"name": "d", "cpu": 1000, "mem": 536870912, "vnc_password": "x", "requirements": ${deep}}`),
        400,
        'validation',
        'requirements',
      );
      assertError(
        await t.call('POST', '/servers/', `{"name": "d", "cpu": 1000, "mem": 536870912, "vnc_password": "x", "meta": ${deep}}`),
        400,
        'validation',
        'meta',
      );
      const proto = await t.call(
        'POST',
        '/servers/',
        '{"name": "p", "cpu": 1000, "mem": 536870912, "vnc_password": "x", "__proto__": {"cpu": "x"}, "meta": {"__proto__": "x", "a": "b"}}',
      );
      assert.equal(proto.status, 201, proto.text);
      assert.equal(proto.body.objects[0].cpu, 1000);
      const req = await t.call('POST', '/servers/', { ...base, requirements: ['ssd'] });
      assert.deepEqual(req.body.objects[0].requirements, ['ssd']);
    });

    test('a bulk create with one bad item creates none', async () => {
      const before = (await t.call('GET', '/servers/?limit=0')).body.meta.total_count;
      const r = await t.call('POST', '/servers/', { objects: [minimalServer('ok1'), minimalServer('ok2'), { ...base, cpu: 'x' }] });
      assertError(r, 400, 'validation', 'cpu');
      const tag = '00000000-0000-4000-8000-000000000000';
      assertError(await t.call('POST', '/servers/', { objects: [minimalServer('ok3'), { ...base, tags: [tag] }] }), 400, 'validation', 'tags');
      assert.equal((await t.call('GET', '/servers/?limit=0')).body.meta.total_count, before);
    });

    test('a rejected edit leaves the server as it was', async () => {
      const s = (await t.call('POST', '/servers/', minimalServer('keep', { meta: { a: '1' }, nics: [{ ip_v4_conf: { conf: 'dhcp' } }] }))).body.objects[0];
      for (const body of [
        { name: 'changed', cpu: 'x' },
        { name: 'changed', meta: { b: '2' }, nics: [{ mac: '22:00:00:00:00:01' }] },
        { name: 'changed', drives: [{ drive: '00000000-0000-4000-8000-000000000000', device: 'virtio', dev_channel: '0:0' }] },
        { name: 'changed', smp: 99 },
        { name: 'changed', cpu_type: 'sparc_t4' },
      ]) {
        const r = await t.call('PUT', `/servers/${s.uuid}/`, body);
        assert.equal(r.status, 400, r.text);
        assert.deepEqual((await t.call('GET', `/servers/${s.uuid}/`)).body, s);
      }
    });

    test('random bodies at every route never get a 5xx', async () => {
      const s = (await t.call('POST', '/servers/', base)).body.objects[0];
      let seed = 42;
      const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const scalar = () => pick<unknown>([null, true, false, 0, -1, 1.5, 1e308, '', 'x', '1000', '22:00:00:00:00:00', s.uuid, [], {}]);
      const value = (depth: number): unknown => {
        if (depth > 2 || rnd() < 0.5) return scalar();
        if (rnd() < 0.5) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1));
        return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, () => [pick(KEYS), value(depth + 1)]));
      };
      const routes: Array<[string, string]> = [
        ['POST', '/servers/'],
        ['PUT', `/servers/${s.uuid}/`],
        ['POST', `/servers/${s.uuid}/action/?do=clone`],
        ['POST', `/servers/${s.uuid}/action/?do=start&avoid=x`],
        ['POST', '/drives/'],
        ['POST', '/tags/'],
        ['POST', '/keypairs/'],
        ['POST', '/accounts/action/?do=login'],
        ['GET', '/servers/?limit=x&offset=&order_by=&tag=&fields='],
      ];
      for (let i = 0; i < 300; i++) {
        const [method, p] = pick(routes);
        const body = rnd() < 0.7 ? { ...base, ...(value(0) as object), [pick(KEYS)]: value(1) } : value(0);
        const r = await t.call(method, p, method === 'GET' ? undefined : JSON.stringify(body));
        assert.ok(r.status < 500, `${method} ${p} ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
        if (r.status >= 400) assert.ok(Array.isArray(r.body), `${method} ${p} -> ${r.text}`);
        // Whatever got created is cleaned up so later requests stay meaningful.
        if (r.status === 201 && p === '/servers/') for (const o of r.body.objects) await t.call('DELETE', `/servers/${o.uuid}/`);
        if (r.status === 202 && p.includes('clone')) await t.call('DELETE', `/servers/${r.body.uuid}/`);
      }
    });
  });
}

const KEYS = [
  'name',
  'cpu',
  'mem',
  'smp',
  'vnc_password',
  'meta',
  'nics',
  'drives',
  'tags',
  'pubkeys',
  'gpus',
  'epcs',
  'hypervisor',
  'cpu_type',
  'cpu_model',
  'context',
  'ip_v4_conf',
  'conf',
  'ip',
  'vlan',
  'mac',
  'model',
  'drive',
  'device',
  'dev_channel',
  'boot_order',
  'objects',
  'size',
  'media',
  'public_key',
  'username',
  'password',
  'random_vnc_password',
  'uuid',
  'resource_uri',
  'requirements',
  'runtime',
  'status',
];
