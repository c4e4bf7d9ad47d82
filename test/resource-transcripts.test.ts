import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { Bindings, compareWire, FIXTURES, readDump, SERVER_EXTRAS, type CompareOptions } from './helpers/dumps.ts';

type Call = TestServer['call'];

/** Fields of drives newer than the 2014 dumps (see docs/decisions.md). */
const DRIVE_NEWER = ['backup_scheduler', 'iops', 'remote_snapshots', 'runtime.is_downloadable', 'runtime.is_ephemeral'];
/** Values that depend on the cloud, the run or the key generator, not on our wire format. */
const SPACED_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$/;

/** A request of a transcript; the autogen one carries a `# comment` that is not JSON. */
function request(name: string): { method: string; path: string; body: any } {
  try {
    const r = readDump(`request_${name}`);
    return { method: r.method, path: r.path.replace(/^\/api\/2\.0/, ''), body: r.body };
  } catch {
    const text = fs.readFileSync(path.join(FIXTURES, `request_${name}`), 'utf8').replace(/#[^\n]*/g, '');
    const [line] = text.split('\n');
    const [method, p] = line!.split(' ');
    return { method: method!, path: p!.replace(/^\/api\/2\.0/, ''), body: JSON.parse(text.slice(text.indexOf('\n\n') + 2)) };
  }
}

/** Sends a transcript's request (its ids replaced by ours) and compares our answer with its response. */
async function replay(call: Call, name: string, b: Bindings, opts: CompareOptions & { path?: string; body?: unknown } = {}) {
  const req = request(name);
  const res = readDump(`response_${name}`);
  const r = await call(
    req.method,
    opts.path ?? b.apply(req.path),
    opts.body !== undefined ? opts.body : req.body === undefined ? undefined : b.apply(req.body),
  );
  assert.equal(r.status, res.status, `${name}: answered ${r.status} ${r.text.slice(0, 400)}`);
  if (res.body === undefined) assert.equal(r.text, '', `${name}: empty body`);
  else
    try {
      compareWire(r.body, res.body, { ...opts, bindings: b });
    } catch (e) {
      (e as Error).message = `${name}: ${(e as Error).message}`;
      throw e;
    }
  return r;
}

/** Compares an answer we already have with a response transcript. */
function like(name: string, ours: unknown, b: Bindings, opts: CompareOptions = {}) {
  try {
    compareWire(ours, readDump(`response_${name}`).body, { ...opts, bindings: b });
  } catch (e) {
    (e as Error).message = `${name}: ${(e as Error).message}`;
    throw e;
  }
}

async function freshUser(t: TestServer, email?: string): Promise<{ call: Call; uuid: string; email: string }> {
  const e = email ?? `u-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const u = await t.running.svc.store.users.create(e, 'password-1');
  return { call: t.as(e, 'password-1'), uuid: u.uuid, email: e };
}

const idle = (call: Call, uuid: string) =>
  waitFor(async () => ['unmounted', 'mounted'].includes((await call('GET', `/drives/${uuid}/`)).body.status), 10000, `drive ${uuid}`);

for (const db of databases()) {
  describe(`resource transcripts [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('keypairs and pubkeys', async () => {
      const { call } = await freshUser(t);
      const b = new Bindings();
      const generated = { free: ['fingerprint', 'private_key', 'public_key'] };
      await replay(call, 'self_gen_keypair_create', b);
      await replay(call, 'pub_key_only_keypair_create', b);
      await replay(call, 'autogen_keypair_create', b, generated);
      await replay(call, 'keypair_get', b, generated);
      await replay(call, 'keypair_update', b, generated);
      await replay(call, 'pubkeys_full_keypair', b);
      await replay(call, 'pubkeys_pub_only_keypair', b);
      // the dump's account had another key ("ala") where ours has the generated one
      const list = await call('GET', '/pubkeys/?limit=0');
      like('pubkeys_list', list.body, new Bindings(), { free: ['fingerprint', 'public_key', 'name', 'uuid', 'resource_uri', 'has_private_key'] });
      const klist = await call('GET', '/keypairs/?limit=0');
      like('keypair_list', klist.body, new Bindings(), { free: ['meta.total_count', 'objects'], partial: false });
      assert.deepEqual(Object.keys(klist.body.objects[0]), Object.keys(readDump('response_keypair_list').body.objects[0]));
      await replay(call, 'keypair_delete', b);
    });

    test('tags', async () => {
      const { call } = await freshUser(t);
      const b = new Bindings();
      const s = (await call('POST', '/servers/', minimalServer('test_server2'))).body.objects[0];
      const created = await replay(call, 'tags_create', b);
      const tag = created.body.objects[0].uuid;
      await replay(call, 'tags_get', new Bindings(), { path: `/tags/${tag}/`, shorter: ['resources'], free: ['name'] });
      await replay(call, 'tags_list', new Bindings(), { shorter: ['objects', 'resources'], free: ['meta.total_count'] });
      await replay(call, 'tags_list_detail', new Bindings(), { shorter: ['objects', 'resources'], free: ['meta.total_count'] });
      // tag the server from its side, then list the tag's servers
      const full = (await call('GET', `/servers/${s.uuid}/`)).body;
      const edit = await call('PUT', `/servers/${s.uuid}/`, { ...full, tags: [tag] });
      assert.equal(edit.status, 200);
      const scoped = await call('GET', `/tags/${tag}/servers/`);
      // CloudSigma answers resource_uri as an object here (digest §1.5); we answer the documented string
      like('tags_list_resource', scoped.body, new Bindings(), { free: ['resource_uri'] });
      assert.equal(scoped.body.objects[0].resource_uri, `/api/2.0/servers/${s.uuid}/`);
      const d = (await call('POST', '/drives/', { name: 'd', size: 1073741824, media: 'disk' })).body.objects[0].uuid;
      await idle(call, d);
      const withRes = await call('POST', '/tags/', { objects: [{ name: 'TagCreatedWithResource', resources: [s.uuid, d] }] });
      like('tags_create_with_resource', withRes.body, new Bindings(), {
        shorter: ['resources'],
        free: ['resources[].res_type', 'resources[].resource_uri', 'resources[].uuid'],
      });
      const upd = await call('PUT', `/tags/${withRes.body.objects[0].uuid}/`, { name: 'TagCreatedWithResource', resources: [d] });
      like('tags_update_resources', upd.body, new Bindings(), {
        shorter: ['resources'],
        free: ['resources[].res_type', 'resources[].resource_uri', 'resources[].uuid'],
      });
      const other = (await call('POST', '/tags/', { name: 'other' })).body.objects[0].uuid;
      const fromResource = new Bindings();
      fromResource.bind('3576136a-0a7e-4ece-8050-f2e408fbca96', s.uuid, 'setup');
      fromResource.bind('00f4ea87-891c-4ee9-a28f-21e25b96dd48', other, 'setup');
      fromResource.bind('c66a2113-be9b-4157-93ac-fb8c0e82087c', tag, 'setup');
      await replay(call, 'tags_update_tag_from_resource', fromResource, { extras: SERVER_EXTRAS, free: ['vnc_password'] });
      assert.deepEqual(
        (await call('GET', `/tags/${other}/`)).body.resources.map((r: any) => r.uuid),
        [s.uuid],
      );
      await replay(call, 'tags_delete', new Bindings(), { path: `/tags/${tag}/` });
      assert.deepEqual((await call('GET', '/tags/schema/')).body, readDump('response_tags_schema').body);
    });

    test('ACLs, grantees and permissions (two accounts)', async () => {
      const alice = await freshUser(t);
      const bob = await freshUser(t, 'user@example.com');
      const b = new Bindings();
      b.bind('c2fc9982-cf2e-434a-bf63-e22a27b39f00', bob.uuid, 'setup');
      const tagOne = await replay(alice.call, 'tag_for_acls', b);
      const tagTwo = (await alice.call('POST', '/tags/', { name: 'test_TagTwo' })).body.objects[0].uuid;
      b.bind('5a9e6f2b-7927-4f30-88b5-0cc939208549', tagTwo, 'setup');
      const drive = await replay(alice.call, 'create_drive_for_acls', b, { extras: DRIVE_NEWER, shorter: ['jobs'] });
      await idle(alice.call, drive.body.objects[0].uuid);
      b.bind('ac5ca635-d119-4dda-b27a-fa5a69fc17da', drive.body.objects[0].uuid, 'setup');
      await replay(alice.call, 'acls_create', b);
      await replay(alice.call, 'acls_create_with_grantees', b);
      await replay(alice.call, 'acls_update', b);
      await replay(alice.call, 'acls_get', b);
      await replay(alice.call, 'acls_list', new Bindings(), { shorter: ['objects'], free: ['meta.total_count', 'grantees', 'rules', 'tags', 'name'] });
      await replay(alice.call, 'own_drive_grantees', b, { extras: DRIVE_NEWER });
      await replay(bob.call, 'foreign_drive_permissions', b, { extras: ['backup_scheduler', 'iops', 'remote_snapshots'] });
      assert.equal(tagOne.status, 201);
      await replay(alice.call, 'acls_delete', b);
      assert.deepEqual((await alice.call('GET', '/acls/schema/')).body, readDump('response_acls_schema').body);
    });

    test('profile', async () => {
      const { call } = await freshUser(t);
      const theirs = readDump('response_profile').body;
      const differs = [
        'address',
        'company',
        'country',
        'first_name',
        'last_name',
        'my_notes',
        'postcode',
        'town',
        'bank_reference',
        'email',
        'signup_time',
        'clone_naming',
        'autotopup_amount',
        'autotopup_threshold',
        'tx_autotopup_amount',
        'tx_autotopup_threshold',
        'currency',
      ];
      like('profile', (await call('GET', '/profile/')).body, new Bindings(), { free: differs });
      const put = await call('PUT', '/profile/', request('profile_update').body);
      like('profile_update', put.body, new Bindings(), {
        free: [
          'email',
          'signup_time',
          'bank_reference',
          'currency',
          'autotopup_amount',
          'autotopup_threshold',
          'tx_autotopup_amount',
          'tx_autotopup_threshold',
        ],
      });
      assert.equal(put.body.company, 'Newly Set Company Name');
      assert.equal(Object.keys(theirs).length, Object.keys(put.body).length);
      for (const naming of ['counter', 'date', 'none', 'timestamp']) {
        const r = await call('PUT', '/profile/', request(`drive_clone_naming_set_profile_to_${naming}`).body);
        like(`drive_clone_naming_set_profile_to_${naming}`, r.body, new Bindings(), {
          extras: ['has_tx_autotopup', 'meta', 'network_restrictions', 'tx_autotopup_amount', 'tx_autotopup_threshold'],
          free: differs.concat(['invoicing', 'language']),
        });
        assert.equal(r.body.clone_naming, naming.toUpperCase());
      }
      assert.deepEqual((await call('GET', '/profile/schema/')).body, readDump('response_profile_schema').body);
    });

    test('jobs', async () => {
      const { call } = await freshUser(t);
      const d = (await call('POST', '/drives/', { name: 'j', size: 1073741824, media: 'disk' })).body.objects[0].uuid;
      await idle(call, d);
      const c = await call('POST', `/drives/${d}/action/?do=clone`, {});
      const dst = c.body.objects[0].uuid;
      await idle(call, dst);
      const job = (await call('GET', '/jobs/?limit=0')).body.objects.find((j: any) => j.operation === 'drive_clone');
      await replay(call, 'jobs_drive_clone', new Bindings(), { path: `/jobs/${job.uuid}/` });
      const s = (await call('POST', '/servers/', minimalServer('j', { drives: [{ drive: d, device: 'virtio', dev_channel: '0:0', boot_order: 1 }] }))).body
        .objects[0];
      const sc = await call('POST', `/servers/${s.uuid}/action/?do=clone`, {});
      assert.equal(sc.status, 202);
      const sjob = await waitFor(
        async () => (await call('GET', '/jobs/?limit=0')).body.objects.find((j: any) => j.operation === 'server_clone' && j.state === 'success'),
        10000,
        'server clone',
      );
      await replay(call, 'jobs_server_clone', new Bindings(), { path: `/jobs/${sjob.uuid}/` });
      await replay(call, 'jobs_list', new Bindings(), {
        path: '/jobs/',
        shorter: ['objects'],
        free: ['meta.total_count', 'operation', 'children', 'resources'],
      });
      assert.deepEqual((await call('GET', '/jobs/schema/')).body, readDump('response_jobs_schema').body);
    });

    test('snapshots', async () => {
      const { call } = await freshUser(t);
      const b = new Bindings();
      const drive = await replay(call, 'drive_for_snapshots', b, { extras: DRIVE_NEWER, shorter: ['jobs'], free: ['status', 'runtime.is_snapshotable'] });
      const d = drive.body.objects[0].uuid;
      await idle(call, d);
      b.bind('450357dc-cbe1-471d-b4cc-dbdfe5f28d84', d, 'setup');
      const spaced = { free: ['timestamp', 'timestamp', 'status', 'status', 'allocated_size', 'allocated_size'] };
      const s1 = await replay(call, 'snapshot_create', b, spaced);
      assert.match(s1.body.objects[0].timestamp, SPACED_TIME);
      await waitFor(async () => (await call('GET', `/snapshots/${s1.body.objects[0].uuid}/`)).body.status === 'available', 10000, 'available');
      like('drive_with_one_snapshot', (await call('GET', `/drives/${d}/`)).body, b, { extras: DRIVE_NEWER });
      const s2 = await call('POST', '/snapshots/', { objects: request('snapshot_create_another').body.objects.map((o: any) => ({ ...o, drive: d })) });
      like('snapshot_create_another', s2.body, new Bindings(), {
        ...spaced,
        extras: ['grantees', 'permissions'],
        free: [...spaced.free, 'drive', 'name', 'meta'],
      });
      await waitFor(async () => (await call('GET', `/snapshots/${s2.body.objects[0].uuid}/`)).body.status === 'available', 10000, 'available');
      like('drive_with_two_snapshots', (await call('GET', `/drives/${d}/`)).body, new Bindings(), { extras: DRIVE_NEWER, free: ['name', 'size', 'meta'] });
      like('snapshots_in_drive_def', (await call('GET', `/drives/${d}/`)).body, new Bindings(), { extras: DRIVE_NEWER, free: ['name', 'size', 'meta'] });
      await replay(call, 'snapshot_get', new Bindings(), {
        path: `/snapshots/${s2.body.objects[0].uuid}/`,
        ...spaced,
        free: [...spaced.free, 'name', 'meta', 'drive'],
      });
      await replay(call, 'snapshot_edit', b, spaced);
      await replay(call, 'snapshot_list', new Bindings(), {
        ...spaced,
        free: [...spaced.free, 'name', 'meta', 'drive', 'meta.total_count'],
        shorter: ['objects'],
      });
      await replay(call, 'snapshot_list_detail', new Bindings(), {
        ...spaced,
        free: [...spaced.free, 'name', 'meta', 'drive', 'meta.total_count'],
        shorter: ['objects'],
      });
      await replay(call, 'snapshot_list_for_drive', new Bindings(), {
        path: `/snapshots/detail/?limit=0&drive=${d}`,
        ...spaced,
        free: [...spaced.free, 'name', 'meta', 'meta.total_count'],
        shorter: ['objects'],
      });
      const forClone = await replay(call, 'drive_for_clone_snapshot', new Bindings(), {
        extras: DRIVE_NEWER,
        shorter: ['jobs'],
        free: ['status', 'runtime.is_snapshotable'],
      });
      await idle(call, forClone.body.objects[0].uuid);
      const clone = await replay(call, 'snapshot_clone', new Bindings(), {
        path: `/snapshots/${s2.body.objects[0].uuid}/action/?do=clone&avoid=${d}`,
        extras: DRIVE_NEWER,
        // the dump answers resource_uri as an object (digest §1.5) and is_snapshotable null
        free: ['resource_uri', 'runtime.is_snapshotable', 'name', 'jobs'],
      });
      await idle(call, clone.body.uuid);
      await replay(call, 'snapshot_delete', b);
      assert.deepEqual((await call('GET', '/snapshots/schema/')).body, readDump('response_snapshot_schema').body);
    });

    test('audit log', async () => {
      const { call } = await freshUser(t);
      const s = await call('POST', '/servers/', request('create_server_for_audit').body);
      assert.equal(s.status, 201);
      await replay(call, 'create_server_audit_log', new Bindings(), { free: ['meta.total_count', 'details', 'timestamp'] });
      const uuid = s.body.objects[0].uuid;
      await call('POST', `/servers/${uuid}/action/?do=start`);
      await replay(call, 'start_server_audit_log', new Bindings(), { free: ['meta.total_count', 'timestamp'] });
      await waitFor(async () => (await call('GET', `/servers/${uuid}/`)).body.status === 'running', 10000, 'running');
      await waitFor(async () => (await call('GET', '/logs/?limit=1')).body.objects[0].action === 'boot', 5000, 'boot logged');
      await replay(call, 'start_server_audit_log_complete', new Bindings(), { free: ['meta.total_count', 'timestamp'] });
      const list = await call('GET', '/logs/?limit=5');
      like('audit_log_list', list.body, new Bindings(), { free: ['meta.total_count', 'timestamp', 'action', 'details', 'uuid'], shorter: ['objects'] });
      for (const o of list.body.objects) assert.match(o.timestamp, SPACED_TIME);
      assert.deepEqual((await call('GET', '/logs/schema/')).body, readDump('response_audit_log_schema').body);
      await call('POST', `/servers/${uuid}/action/?do=stop`);
      await waitFor(async () => (await call('GET', `/servers/${uuid}/`)).body.status === 'stopped', 10000, 'stopped');
    });

    test('balance, current usage, pricing, ledger, discount, licenses', async () => {
      const { call } = await freshUser(t);
      await replay(call, 'balance_list', new Bindings(), { free: ['balance', 'currency'] });
      await replay(call, 'currentusage_list', new Bindings(), { free: ['balance.balance', 'balance.currency', 'usage'] });
      const usage = (await call('GET', '/currentusage/')).body.usage;
      for (const k of ['cpu', 'mem', 'dssd', 'ip', 'vlan', 'tx', 'amd_cpu', 'amd_mem'])
        assert.deepEqual(Object.keys(usage[k]), ['burst', 'subscribed', 'using'], k);
      await replay(call, 'pricing_list', new Bindings(), {
        free: ['current', 'next', 'meta.total_count', 'meta.limit', 'currency', 'price', 'resource', 'multiplier', 'id', 'level', 'unit'],
        shorter: ['objects'],
      });
      for (const name of ['ledger_list', 'discount_list', 'licenses_list'])
        await replay(call, name, new Bindings(), { shorter: ['objects'], free: ['meta.total_count'] });
      for (const name of ['balance', 'currentusage', 'pricing', 'ledger', 'discount', 'licenses'])
        assert.deepEqual((await call('GET', `/${name}/schema/`)).body, readDump(`response_${name}_schema`).body, name);
    });
  });
}
