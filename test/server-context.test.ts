import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { databases, startServer, waitForStatus, ADMIN, type TestServer } from './helpers/harness.ts';
import { contextReply } from '../src/commands/server-context.ts';
import { applyServerInput } from '../src/domain/server-definition.ts';

const fixture = (name: string) => fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const body = (name: string) =>
  JSON.parse(
    fixture(name)
      .split(/\r?\n\r?\n/)
      .slice(1)
      .join('\n\n'),
  );
const EOT = '\x04';

/** Puts the transcripts' server (same uuids, MAC, drive and DHCP lease) into a running opensigma, then starts it. */
async function transcriptServer(
  t: TestServer,
  s: { uuid: string; name: string; mac: string; vnc: string; meta: Record<string, string>; ip: string },
  d: { uuid: string; name: string; size: number; meta: Record<string, string> },
) {
  const svc = t.running.svc;
  const owner = (await svc.store.users.byEmail(ADMIN.email))!.uuid;
  await svc.store.drives.insert(
    owner,
    {
      uuid: d.uuid,
      name: d.name,
      media: 'disk',
      size: d.size,
      storage_type: 'dssd',
      allow_multimount: false,
      affinities: [],
      meta: d.meta,
      tags: [],
      licenses: [],
    },
    'mounted',
  );
  const def = applyServerInput(
    null,
    {
      name: s.name,
      cpu: 1000,
      mem: 1073741824,
      vnc_password: s.vnc,
      meta: s.meta,
      nics: [{ ip_v4_conf: { conf: 'dhcp' } }],
      drives: [{ boot_order: 1, dev_channel: '0:0', device: 'virtio', drive: d.uuid }],
    },
    svc.capabilities,
  );
  def.uuid = s.uuid;
  def.nics[0]!.mac = s.mac;
  await svc.store.servers.insert(owner, def, 'stopped');
  await svc.store.db.insertInto('server_drives').values({ server_uuid: s.uuid, drive_uuid: d.uuid }).execute();
  // The lease the transcript's guest had: DHCP hands a NIC the address it already holds.
  await svc.store.db.insertInto('dhcp_leases').values({ ip: s.ip, server_uuid: s.uuid, mac: s.mac, created_at: new Date().toISOString() }).execute();
  assert.equal((await t.call('POST', `/servers/${s.uuid}/action/?do=start`)).status, 202);
  await waitForStatus(t, s.uuid, 'running');
}

/** Every key and value of `want` is in `got` (an older platform answered fewer keys). */
function assertSubset(got: unknown, want: unknown, path = '') {
  if (want && typeof want === 'object') {
    assert.ok(got && typeof got === 'object', `${path} missing`);
    for (const [k, v] of Object.entries(want)) assertSubset((got as any)[k], v, `${path}/${k}`);
  } else assert.deepEqual(got, want, path);
}

const SSH = JSON.parse(fixture('response_context_all')).meta.ssh_public_key as string;

for (const db of databases()) {
  describe(`server context [${db.name}]`, () => {
    let t: TestServer;
    const uuid = 'e0fcf2ae-020e-45e1-bf69-982b17da4b6a';
    const ask = (request: string) => contextReply(t.running.svc, uuid, request);
    before(async () => {
      t = await startServer({ OPENSIGMA_DHCP_POOL: '94.26.101.0/24', OPENSIGMA_NAMESERVERS: '8.8.8.8' }, db);
      await transcriptServer(
        t,
        { uuid, name: 'test_srv_test_guest_context', mac: '22:81:c9:73:91:e4', vnc: '1132f1963f9f47b4', meta: { ssh_public_key: SSH }, ip: '94.26.101.144' },
        { uuid: 'ca360a3f-55e4-4b5f-92ba-ada83fca2940', name: 'test_clone_test_guest_context', size: 3221225472, meta: {} },
      );
    });
    after(async () => t.close());

    test('whole context, a key, and a nested key: byte for byte the transcripts, newline and EOT after', async () => {
      assert.equal(await ask('\n\n'), fixture('response_context_all') + '\n' + EOT);
      assert.equal(await ask(''), fixture('response_context_all_robust') + '\n' + EOT);
      assert.equal(await ask('\nname\n'), fixture('response_context_single_value') + '\n' + EOT);
      assert.equal(await ask('/meta/ssh_public_key'), fixture('response_context_single_value_ssh_key') + '\n' + EOT);
    });

    test('a rename and a meta change of the running server show in the next replies', async () => {
      const r = await t.call('PUT', `/servers/${uuid}/`, {
        name: 'test_srv_test_guest_context_renamed',
        meta: { another_key: 'a value or something', ssh_public_key: SSH },
      });
      assert.equal(r.status, 200);
      assert.equal(await ask('\r\n\r\n'), fixture('response_context_all_dynamic') + '\n' + EOT);
      assert.equal(await ask('\n\n'), fixture('response_context_all_dynamic_robust') + '\n' + EOT);
      assert.equal(await ask('\nname\n'), fixture('response_context_single_value_dynamic') + '\n' + EOT);
      assert.equal(await ask('\n/meta/another_key\n'), fixture('response_context_single_value_another_key_dynamic') + '\n' + EOT);
    });

    test('global context: POST replaces it (transcript), GET shows it, servers see it under global_context', async () => {
      const p = await t.call('POST', '/global_context/', body('request_update_global_context'));
      assert.equal(p.status, 200);
      assert.deepEqual(p.body, body('response_update_global_context'));
      assert.deepEqual((await t.call('GET', '/global_context/')).body, { new_global_key: 'new_global_val' });
      assert.equal(await ask('\n\n'), fixture('response_global_context_all_robust') + '\n' + EOT);
      assert.equal(await ask('\n/global_context/new_global_key\n'), fixture('response_global_context_single_value') + '\n' + EOT);
      assert.equal(await ask('\n/global_context/\n'), '{"new_global_key": "new_global_val"}\n' + EOT);
      const other = t.as('other@example.com', 'other-password');
      await t.running.svc.store.users.create('other@example.com', 'other-password');
      assert.deepEqual((await other('GET', '/global_context/')).body, {});
      const put = await t.call('PUT', '/global_context/', {});
      assert.deepEqual(put.body, {});
      assert.equal(await ask('/global_context/new_global_key'), '\n' + EOT);
      for (const bad of [[1], 'x', { k: { nested: true } }]) {
        const r = await t.call('POST', '/global_context/', bad);
        assert.equal(r.status, 400, JSON.stringify(bad));
        assert.equal(r.body[0].error_type, 'validation');
      }
      assert.equal((await t.call('DELETE', '/global_context/')).status, 405);
    });

    test('leaves: raw without quotes, escaped control characters and non-ASCII; null, missing and unknown are empty', async () => {
      await t.call('PUT', `/servers/${uuid}/`, { meta: { multi: 'line one\nline\ttwo\r', accent: 'café', quote: 'say "hi"' } });
      assert.equal(await ask('/meta/multi'), 'line one\\nline\\ttwo\\r\n' + EOT);
      assert.equal(await ask('/meta/accent'), 'caf\\u00e9\n' + EOT);
      assert.equal(await ask('/meta/quote'), 'say \\"hi\\"\n' + EOT);
      assert.equal(await ask('meta'), '{"multi": "line one\\nline\\ttwo\\r", "accent": "caf\\u00e9", "quote": "say \\"hi\\"", "ssh_public_key": ""}\n' + EOT);
      assert.equal(await ask('/nics/0/mac'), '22:81:c9:73:91:e4\n' + EOT);
      assert.equal(await ask('/nics/0/ip_v4_conf/ip/uuid'), '94.26.101.144\n' + EOT);
      assert.equal(await ask('/nics/0/ip_v4_conf/ip/netmask'), '24\n' + EOT);
      assert.equal(await ask('/drives/0/drive/size'), '3221225472\n' + EOT);
      assert.equal(await ask('/cpu_perf_threshold'), '0.0\n' + EOT);
      assert.equal(await ask('/hv_tsc'), 'false\n' + EOT);
      assert.equal(await ask('/cpu_model'), '\n' + EOT);
      assert.equal(await ask('/nope'), '\n' + EOT);
      assert.equal(await ask('/nics/7/mac'), '\n' + EOT);
      assert.equal(await ask('/nics/x'), '\n' + EOT);
      assert.equal(await ask('/name/deeper'), '\n' + EOT);
      assert.equal(await contextReply(t.running.svc, '00000000-0000-4000-8000-000000000000', ''), '\n' + EOT);
      // a UTF-8 path as a tty hands it over (bytes read as latin1)
      await t.call('PUT', `/servers/${uuid}/`, { meta: { clé: 'v' } });
      assert.equal(await ask(Buffer.from('/meta/clé', 'utf8').toString('latin1')), 'v\n' + EOT);
    });

    test('a static IP and a VLAN are expanded with their meta and tags', async () => {
      const [ip] = (await t.call('POST', '/subscriptions/', [{ resource: 'ip', period: '1 month' }])).body.objects.map((s: any) => s.subscribed_object);
      const vlan = (await t.call('POST', '/subscriptions/', [{ resource: 'vlan', period: '1 month' }])).body.objects[0].subscribed_object;
      await t.call('PUT', `/ips/${ip}/`, { meta: { name: 'front' } });
      const s = (
        await t.call('POST', '/servers/', {
          name: 'ctx2',
          cpu: 1000,
          mem: 536870912,
          vnc_password: 'x12345678',
          nics: [{ ip_v4_conf: { conf: 'static', ip } }, { vlan }],
        })
      ).body.objects[0];
      const reply = await contextReply(t.running.svc, s.uuid, '/nics');
      assert.ok(reply.endsWith('\n' + EOT));
      assert.deepEqual(JSON.parse(reply.slice(0, -2)), [
        {
          boot_order: null,
          vlan: null,
          ip_v4_conf: { ip: { uuid: ip, tags: [], nameservers: ['8.8.8.8'], netmask: 24, meta: { name: 'front' }, gateway: '127.201.0.1' }, conf: 'static' },
          mac: s.nics[0].mac,
          model: 'virtio',
          ip_v6_conf: null,
        },
        { boot_order: null, vlan: { uuid: vlan, tags: [], meta: {} }, ip_v4_conf: null, mac: s.nics[1].mac, model: 'virtio', ip_v6_conf: null },
      ]);
    });
  });

  describe(`server context, older transcript [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_DHCP_POOL: '162.213.38.0/24', OPENSIGMA_NAMESERVERS: '69.194.139.62,178.22.66.167,178.22.71.56' }, db);
    });
    after(async () => t.close());

    test('response_global_context_all (fewer keys, another server) is contained in our reply', async () => {
      const want = JSON.parse(fixture('response_global_context_all'));
      await transcriptServer(
        t,
        { uuid: want.uuid, name: want.name, mac: want.nics[0].mac, vnc: want.vnc_password, meta: want.meta, ip: want.nics[0].ip_v4_conf.ip.uuid },
        { uuid: want.drives[0].drive.uuid, name: want.drives[0].drive.name, size: want.drives[0].drive.size, meta: want.drives[0].drive.meta },
      );
      await t.call('POST', '/global_context/', want.global_context);
      const reply = await contextReply(t.running.svc, want.uuid, '\n\n');
      assertSubset(JSON.parse(reply.slice(0, -2)), want);
    });
  });
}
