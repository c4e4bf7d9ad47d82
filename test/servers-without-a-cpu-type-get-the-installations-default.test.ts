import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';
import { loadConfig } from '../src/config.ts';

for (const db of databases()) {
  describe(`servers without a cpu_type get the installation's default, and usage counts them under it [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_DEFAULT_CPU_TYPE: 'intel' }, db);
    });
    after(async () => t.close());

    test('an Intel installation: created intel, running ones counted under intel_cpu / intel_mem (what pycloudsigma reads)', async () => {
      const made = await t.call('POST', '/servers/', {
        objects: [minimalServer('a'), minimalServer('b', { cpu: 2000 }), minimalServer('c', { cpu_type: 'amd' })],
      });
      assert.equal(made.status, 201, made.text);
      assert.deepEqual(
        made.body.objects.map((s: any) => s.cpu_type),
        ['intel', 'intel', 'amd'],
      );
      // A new hypervisor without a cpu_type gets the default too.
      const edited = await t.call('PUT', `/servers/${made.body.objects[2].uuid}/`, { ...minimalServer('c'), hypervisor: 'kvm' });
      assert.equal(edited.body.cpu_type, 'amd', 'the same hypervisor resent keeps its cpu_type');

      const before = (await t.call('GET', '/currentusage/')).body.usage;
      for (const s of made.body.objects) assert.equal((await t.call('POST', `/servers/${s.uuid}/action/?do=start`)).status, 202);
      for (const s of made.body.objects) await waitForStatus(t, s.uuid, 'running');
      const after = (await t.call('GET', '/currentusage/')).body.usage;
      assert.equal(after.intel_cpu.using - before.intel_cpu.using, 3000);
      assert.equal(after.intel_mem.using - before.intel_mem.using, 2 * 536870912);
      assert.equal(after.amd_cpu.using - before.amd_cpu.using, 1000);
      assert.equal(after.cpu.using - before.cpu.using, 4000);
    });
  });
}

describe('OPENSIGMA_DEFAULT_CPU_TYPE', () => {
  test('defaults to amd, as CloudSigma, and refuses what no host can be', () => {
    assert.equal(loadConfig({}, {}).defaultCpuType, 'amd');
    assert.equal(loadConfig({ OPENSIGMA_DEFAULT_CPU_TYPE: 'intel' }, {}).defaultCpuType, 'intel');
    assert.throws(() => loadConfig({ OPENSIGMA_DEFAULT_CPU_TYPE: 'sparc' }, {}), /amd or intel/);
  });
});

describe('GET /cloud_status/', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(async () => t.close());

  test('answers every key the Go SDK reads, for an installation with no free tier, trial or sign-up; not to anonymous callers', async () => {
    const r = await t.call('GET', '/cloud_status/');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      free_tier: { dssd: 0, mem: 0 },
      free_tier_monthly: { tx: 0 },
      guest: false,
      host_availability_zones: false,
      remote_snapshots: false,
      signup: false,
      sso: [],
      trial: false,
      vmware: false,
      vpc: false,
    });
    assert.equal((await fetch(`${t.api}/cloud_status/`)).status, 401);
  });
});
