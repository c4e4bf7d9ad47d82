import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0Q3Y0x8m7xQ0cD3f0xG0n1v0b1k2l3m4n5o6p7q8r9 edit@example';

for (const db of databases()) {
  describe(`server edit [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    const create = async (extra: Record<string, unknown> = {}) => {
      const r = await t.call('POST', '/servers/', minimalServer('edit', extra));
      assert.equal(r.status, 201, r.text);
      return r.body.objects[0];
    };

    test('a field present replaces (lists and meta wholesale), a field absent keeps', async () => {
      const s = await create({ meta: { a: '1', b: '2' }, nics: [{ ip_v4_conf: { conf: 'dhcp' } }], smp: 1, cpu: 2000 });
      const r = await t.call('PUT', `/servers/${s.uuid}/`, { meta: { c: '3' }, name: 'renamed' });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.meta, { c: '3' });
      assert.equal(r.body.name, 'renamed');
      assert.deepEqual(r.body.nics, s.nics);
      assert.equal(r.body.cpu, 2000);
      assert.equal(r.body.vnc_password, s.vnc_password);
      const cleared = await t.call('PUT', `/servers/${s.uuid}/`, { meta: {}, nics: [] });
      assert.deepEqual(cleared.body.meta, {});
      assert.deepEqual(cleared.body.nics, []);
      assert.equal(cleared.body.name, 'renamed');
      // meta keeps newlines and unicode; numbers become strings
      const m = await t.call('PUT', `/servers/${s.uuid}/`, { meta: { text: 'value\nwith\nnew lines', ключ: 'значение ✓', n: 5 } });
      assert.deepEqual(m.body.meta, { text: 'value\nwith\nnew lines', ключ: 'значение ✓', n: '5' });
    });

    test('PUT of the GET representation changes nothing; read-only fields sent back are ignored', async () => {
      const tag = (await t.call('POST', '/tags/', { name: 'ro' })).body.objects[0].uuid;
      const s = await create({ meta: { x: 'y' }, tags: [tag], nics: [{ ip_v4_conf: { conf: 'manual' } }, { ip_v4_conf: { conf: 'dhcp' }, model: 'e1000' }] });
      const got = (await t.call('GET', `/servers/${s.uuid}/`)).body;
      const same = await t.call('PUT', `/servers/${s.uuid}/`, got);
      assert.equal(same.status, 200, same.text);
      assert.deepEqual(same.body, got);
      const forged = {
        ...got,
        uuid: '00000000-0000-4000-8000-000000000000',
        status: 'running',
        owner: { uuid: '00000000-0000-4000-8000-000000000001', resource_uri: '/api/2.0/user/00000000-0000-4000-8000-000000000001/' },
        resource_uri: '/api/2.0/servers/00000000-0000-4000-8000-000000000000/',
        runtime: { active_since: '2015-01-01T00:00:00+00:00', nics: [] },
        jobs: [{ uuid: '00000000-0000-4000-8000-000000000002' }],
        grantees: ['x'],
        permissions: ['EDIT'],
      };
      const r = await t.call('PUT', `/servers/${s.uuid}/`, forged);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, got);
    });

    test('on a running server only name, meta and tags change, and the edit still answers 200', async () => {
      const tag = (await t.call('POST', '/tags/', { name: 'live' })).body.objects[0].uuid;
      const s = await create({ nics: [{ ip_v4_conf: { conf: 'dhcp' } }] });
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      const run = await waitForStatus(t, s.uuid, 'running');
      const r = await t.call('PUT', `/servers/${s.uuid}/`, {
        ...run,
        name: 'live-name',
        meta: { live: 'yes' },
        tags: [tag],
        cpu: 3000,
        mem: 1073741824,
        vnc_password: 'changed',
        nics: [],
        smp: 2,
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.name, 'live-name');
      assert.deepEqual(r.body.meta, { live: 'yes' });
      assert.deepEqual(
        r.body.tags.map((x: any) => x.uuid),
        [tag],
      );
      for (const k of ['cpu', 'mem', 'vnc_password', 'smp', 'nics', 'drives']) assert.deepEqual(r.body[k], run[k], k);
      const g = (await t.call('GET', `/servers/${s.uuid}/`)).body;
      assert.equal(g.cpu, run.cpu);
      assert.equal(g.status, 'running');
      // Changes nobody may make are ignored too, rather than refused.
      assert.equal((await t.call('PUT', `/servers/${s.uuid}/`, { cpu: 'lots', name: 'again' })).status, 200);
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitForStatus(t, s.uuid, 'stopped');
      const after = await t.call('PUT', `/servers/${s.uuid}/`, { cpu: 2500 });
      assert.equal(after.body.cpu, 2500, after.text);
    });

    test('meta, tags and pubkeys round-trip and can be cleared', async () => {
      const tags = [
        (await t.call('POST', '/tags/', { name: 't1' })).body.objects[0].uuid,
        (await t.call('POST', '/tags/', { name: 't2' })).body.objects[0].uuid,
      ];
      const key = (await t.call('POST', '/keypairs/', { name: 'k', public_key: KEY })).body.objects[0].uuid;
      const s = await create({
        meta: { ssh_public_key: KEY, base64_fields: 'cloudinit-user-data', 'cloudinit-user-data': 'I2Nsb3VkLWNvbmZpZw==' },
        tags,
        pubkeys: [key],
      });
      assert.deepEqual(
        s.tags,
        tags.map((u) => ({ resource_uri: `/api/2.0/tags/${u}/`, uuid: u })),
      );
      assert.deepEqual(s.pubkeys, [{ resource_uri: `/api/2.0/pubkeys/${key}/`, uuid: key }]);
      const g = (await t.call('GET', `/servers/${s.uuid}/`)).body;
      assert.deepEqual(g.meta, s.meta);
      const tagged = await t.call('GET', `/servers/?tag=${tags[1]}`);
      assert.deepEqual(
        tagged.body.objects.map((x: any) => x.uuid),
        [s.uuid],
      );
      const cleared = await t.call('PUT', `/servers/${s.uuid}/`, { tags: [], pubkeys: [] });
      assert.deepEqual(cleared.body.tags, []);
      assert.deepEqual(cleared.body.pubkeys, []);
      assert.equal((await t.call('GET', `/servers/?tag=${tags[1]}`)).body.meta.total_count, 0);
      const tag = (await t.call('GET', '/tags/')).body.objects.find((x: any) => x.uuid === tags[0]);
      assert.ok(!tag.resources.some((r: any) => r.uuid === s.uuid));
    });

    test('defaults of a new server field for field', async () => {
      const s = await create();
      for (const [k, v] of Object.entries({
        context: true,
        cpu_model: null,
        cpu_type: 'amd',
        cpus_instead_of_cores: false,
        drives: [],
        enable_numa: false,
        grantees: [],
        hv_relaxed: false,
        hv_tsc: false,
        hypervisor: 'kvm',
        jobs: [],
        meta: {},
        nics: [],
        permissions: [],
        pubkeys: [],
        requirements: [],
        runtime: null,
        smp: 1,
        status: 'stopped',
        tags: [],
        allocation_pool: null,
        auto_start: false,
        epcs: [],
        gpus: [],
        is_grey: false,
      }))
        assert.deepEqual(s[k], v, k);
      const flags = await t.call('PUT', `/servers/${s.uuid}/`, {
        cpus_instead_of_cores: true,
        enable_numa: 'true',
        hv_relaxed: true,
        hv_tsc: true,
        context: false,
        cpu_model: 'kvm64',
        auto_start: true,
      });
      assert.equal(flags.status, 200, flags.text);
      for (const k of ['cpus_instead_of_cores', 'enable_numa', 'hv_relaxed', 'hv_tsc', 'auto_start']) assert.equal(flags.body[k], true, k);
      assert.equal(flags.body.context, false);
      assert.equal(flags.body.cpu_model, 'kvm64');
    });
  });
}
