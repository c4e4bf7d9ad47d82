import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, startServer, type TestServer } from './helpers/harness.ts';
import { Bindings, compareWire, readDump, readFixture, SERVER_EXTRAS, type CompareOptions } from './helpers/dumps.ts';

type Call = TestServer['call'];

/** Shown on every shareable resource since the dumps were taken (digest §17): what the owner and grantees see. */
const SHARING = ['grantees', 'permissions'];
/** Server fields newer than the 2015 attach dump. */
const SERVER_NEWER = [...SERVER_EXTRAS, 'cpu_type', 'hypervisor', 'pubkeys'];

/** Replays a historical transcript (test/fixtures/cloudsigma/fwpolicies/) and compares our answer field by field. */
async function replay(call: Call, name: string, b: Bindings, opts: CompareOptions = {}) {
  const req = readDump(`fwpolicies/request_${name}`);
  const res = readDump(`fwpolicies/response_${name}`);
  const r = await call(req.method, b.apply(req.path.replace(/^\/api\/2\.0/, '')), req.body === undefined ? undefined : b.apply(req.body));
  assert.equal(r.status, res.status, `${name}: answered ${r.status} ${r.text.slice(0, 400)}`);
  if (res.body === undefined) assert.equal(r.text, '', `${name}: empty body`);
  else
    try {
      compareWire(r.body, res.body, { extras: SHARING, ...opts, bindings: b });
    } catch (e) {
      (e as Error).message = `${name}: ${(e as Error).message}`;
      throw e;
    }
  return r;
}

for (const db of databases()) {
  describe(`firewall policy transcripts [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('the decommissioned /fwpolicies/ dumps replay field for field: create, get, lists, update, attach, delete, schema', async () => {
      const email = `fw-${Math.random().toString(36).slice(2, 8)}@example.com`;
      await t.running.svc.store.users.create(email, 'password-1');
      const call = t.as(email, 'password-1');
      const b = new Bindings();
      await replay(call, 'fwpolicy_create_minimal', b);
      const full = await replay(call, 'fwpolicy_create_full', b);
      await replay(call, 'fwpolicy_get', b);
      await replay(call, 'fwpolicy_list', b);
      await replay(call, 'fwpolicy_list_detail', b);
      await replay(call, 'fwpolicy_update', b);
      // the attach dump comes from another run: its policy stands for the one made above
      b.bind('abb98bcb-2d3c-4758-b59c-3094b54b5c9e', full.body.objects[0].uuid, 'setup');
      const attached = await replay(call, 'fwpolicy_server_attach', b, { extras: SERVER_NEWER });
      const server = attached.body.objects[0].uuid;
      const policy = (await call('GET', `/fwpolicies/${full.body.objects[0].uuid}/`)).body;
      assert.deepEqual(policy.servers, [{ resource_uri: `/api/2.0/servers/${server}/`, uuid: server }]);
      await replay(call, 'fwpolicy_delete', b);
      assert.equal((await call('GET', `/servers/${server}/`)).body.nics[0].firewall_policy, null);
      assert.deepEqual((await call('GET', '/fwpolicies/schema/')).body, readDump('fwpolicies/response_fwpolicy_schema').body);
    });

    test("libcloud's fwpolicy fixtures have the shape of our answers", async () => {
      const email = `lc-${Math.random().toString(36).slice(2, 8)}@example.com`;
      await t.running.svc.store.users.create(email, 'password-1');
      const call = t.as(email, 'password-1');
      // libcloud's fixtures were captured without `tags`
      const opts = { extras: [...SHARING, 'tags'] };
      const noRules = await call('POST', '/fwpolicies/', { objects: [{ name: 'test policy 1' }] });
      compareWire(noRules.body, readFixture('fwpolicies_create_no_rules.json'), opts);
      const rule = { action: 'accept', direction: 'out', dst_ip: '127.0.0.1', ip_proto: 'tcp', src_ip: '127.0.0.1' };
      const withRules = await call('POST', '/fwpolicies/', { objects: [{ name: 'test policy 2', rules: [rule] }] });
      compareWire(withRules.body, readFixture('fwpolicies_create_with_rules.json'), opts);
      await call('DELETE', `/fwpolicies/${noRules.body.objects[0].uuid}/`);
      await call('DELETE', `/fwpolicies/${withRules.body.objects[0].uuid}/`);
      const detail = readFixture('fwpolicies_detail.json');
      for (const p of detail.objects) assert.equal((await call('POST', '/fwpolicies/', { name: p.name, rules: p.rules })).status, 201);
      compareWire((await call('GET', '/fwpolicies/detail/?limit=0')).body, detail, opts);
    });
  });
}
