import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';
import { readDump } from './helpers/dumps.ts';
import { contextReply } from '../src/commands/server-context.ts';
import { decide } from '../src/domain/firewall.ts';
import { nicPolicies } from '../src/commands/firewall.ts';
import type { ChangeEvent } from '../src/events.ts';
import WebSocket from 'ws';

type Call = TestServer['call'];
const keysOf = (o: object) => Object.keys(o).sort();
const dhcpNic = (extra: Record<string, unknown> = {}) => ({ ip_v4_conf: { conf: 'dhcp' }, model: 'virtio', ...extra });
const SSH_ONLY = [
  { action: 'accept', direction: 'in', ip_proto: 'tcp', dst_port: '22', src_ip: '172.66.32.0/24', comment: 'office' },
  { action: 'drop', direction: 'in', ip_proto: 'tcp', dst_port: '22' },
];

async function freshUser(t: TestServer, tag: string): Promise<{ call: Call; uuid: string; email: string }> {
  const email = `${tag}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const u = await t.running.svc.store.users.create(email, 'password-1');
  return { call: t.as(email, 'password-1'), uuid: u.uuid, email };
}

async function policy(call: Call, body: Record<string, unknown> = {}): Promise<any> {
  const r = await call('POST', '/fwpolicies/', { objects: [body] });
  assert.equal(r.status, 201, r.text);
  return r.body.objects[0];
}

async function server(call: Call, nics: unknown[]): Promise<any> {
  const r = await call('POST', '/servers/', minimalServer('fw', { nics }));
  assert.equal(r.status, 201, r.text);
  return r.body.objects[0];
}

const statusIs = (call: Call, uuid: string, status: string) =>
  waitFor(async () => (await call('GET', `/servers/${uuid}/`)).body.status === status, 15000, `server ${uuid} ${status}`);
const policyRef = (uuid: string) => ({ resource_uri: `/api/2.0/fwpolicies/${uuid}/`, uuid });
const serverRefs = (...uuids: string[]) => uuids.map((uuid) => ({ resource_uri: `/api/2.0/servers/${uuid}/`, uuid }));

for (const db of databases()) {
  describe(`firewall policies [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t.close());

    test('create (one, many), list, detail, get, edit and delete have the fields and codes of the transcripts', async () => {
      const { call } = await freshUser(t, 'crud');
      const minimal = await policy(call);
      assert.deepEqual(
        { ...minimal, owner: null, uuid: null, resource_uri: null },
        { grantees: [], meta: {}, name: null, owner: null, permissions: [], resource_uri: null, rules: [], servers: [], tags: [], uuid: null },
      );
      assert.equal(minimal.resource_uri, `/api/2.0/fwpolicies/${minimal.uuid}/`);
      const bulk = await call('POST', '/fwpolicies/', {
        objects: [
          { name: 'a', rules: SSH_ONLY },
          { name: 'b', meta: { k: 'v' } },
        ],
      });
      assert.equal(bulk.status, 201);
      assert.deepEqual(
        bulk.body.objects.map((p: any) => p.name),
        ['a', 'b'],
      );
      assert.equal(bulk.body.objects[0].rules[0].src_ip, '172.66.32.0/24');
      assert.equal(bulk.body.objects[0].rules[1].src_ip, null);
      const bare = await call('POST', '/fwpolicies/', { name: 'bare object' });
      assert.equal(bare.status, 201);
      const list = await call('GET', '/fwpolicies/?limit=0');
      assert.deepEqual(list.body.meta, { limit: 0, offset: 0, total_count: 4 });
      assert.deepEqual(keysOf(list.body.objects[0]), keysOf(readDump('fwpolicies/response_fwpolicy_list').body.objects[0]));
      const detail = await call('GET', '/fwpolicies/detail/?limit=0');
      assert.deepEqual(detail.body.objects[1], bulk.body.objects[0]);
      assert.deepEqual(
        (await call('GET', '/fwpolicies/?name=b')).body.objects.map((p: any) => p.name),
        ['b'],
      );
      assert.deepEqual(
        (await call('GET', '/fwpolicies/?name__contains=bare')).body.objects.map((p: any) => p.name),
        ['bare object'],
      );
      const a = bulk.body.objects[0].uuid;
      const got = await call('GET', `/fwpolicies/${a}/`);
      assert.deepEqual(got.body, bulk.body.objects[0]);
      // a GET-edit-PUT round trip, as clients do it: read-only fields are ignored
      const put = await call('PUT', `/fwpolicies/${a}/`, { ...got.body, name: 'renamed', rules: got.body.rules.slice(1), servers: serverRefs(a) });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.body.name, 'renamed');
      assert.deepEqual(put.body.servers, []);
      assert.deepEqual(put.body.rules, [
        { action: 'drop', comment: null, direction: 'in', dst_ip: null, dst_port: '22', ip_proto: 'tcp', src_ip: null, src_port: null },
      ]);
      assert.deepEqual((await call('GET', '/fwpolicies/schema/')).body, readDump('fwpolicies/response_fwpolicy_schema').body);
      const del = await call('DELETE', `/fwpolicies/${a}/`);
      assert.equal(del.status, 204);
      assert.equal(del.text, '');
      assert.equal((await call('GET', `/fwpolicies/${a}/`)).status, 404);
      assert.equal((await call('PUT', `/fwpolicies/${a}/`, { name: 'x' })).status, 404);
      assert.equal((await call('DELETE', `/fwpolicies/${a}/`)).status, 404);
      // several at once: all of them, or none
      const rest = (await call('GET', '/fwpolicies/')).body.objects.map((p: any) => p.uuid);
      assert.equal(rest.length, 3);
      const partly = await call('DELETE', '/fwpolicies/', { objects: [{ uuid: rest[0] }, { uuid: a }] });
      assert.equal(partly.status, 404);
      assert.equal((await call('GET', '/fwpolicies/')).body.meta.total_count, 3, 'nothing was deleted');
      assert.equal((await call('DELETE', '/fwpolicies/', { objects: [] })).status, 400);
      assert.equal((await call('DELETE', '/fwpolicies/', { objects: rest.map((uuid: string) => ({ uuid })) })).status, 204);
      assert.equal((await call('GET', '/fwpolicies/')).body.meta.total_count, 0);
    });

    test('a bad rule answers 400 naming the rule and field, and creates or changes nothing', async () => {
      const { call } = await freshUser(t, 'bad');
      const bad = await call('POST', '/fwpolicies/', {
        objects: [{ name: 'fine' }, { name: 'bad', rules: [{ action: 'drop', direction: 'in', dst_port: '22:1' }] }],
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.body[0].error_point, 'rules.0.dst_port');
      assert.equal(bad.body[0].error_type, 'validation');
      assert.equal((await call('GET', '/fwpolicies/')).body.meta.total_count, 0, 'the good one of the bulk was not created either');
      const p = await policy(call, { name: 'p', rules: SSH_ONLY });
      for (const [rules, point] of [
        [[SSH_ONLY[0], { action: 'drop', direction: 'in', src_ip: '300.1.1.1' }], 'rules.1.src_ip'],
        [[{ action: 'drop', direction: 'in', ip_proto: 'icmp' }], 'rules.0.ip_proto'],
        [[{ action: 'allow', direction: 'in' }], 'rules.0.action'],
        [[{ action: 'drop' }], 'rules.0.direction'],
        [[{ action: 'drop', direction: 'in', src_port: '!ssh' }], 'rules.0.src_port'],
        [[{ action: 'drop', direction: 'in', dst_ip: '10.0.0.0/40' }], 'rules.0.dst_ip'],
        ['drop all', 'rules'],
      ] as Array<[unknown, string]>) {
        const r = await call('PUT', `/fwpolicies/${p.uuid}/`, { name: 'changed', rules });
        assert.equal(r.status, 400, JSON.stringify(rules));
        assert.equal(r.body[0].error_point, point);
      }
      const after = (await call('GET', `/fwpolicies/${p.uuid}/`)).body;
      assert.equal(after.name, 'p');
      assert.deepEqual(after.rules, p.rules);
      const tag = await call('PUT', `/fwpolicies/${p.uuid}/`, { tags: ['00000000-0000-4000-8000-000000000000'] });
      assert.equal(tag.status, 400);
      assert.equal(tag.body[0].error_point, 'tags');
    });

    test('a public NIC takes a policy by uuid, URI or object; the policy lists its servers; null detaches, leaving the key out keeps it', async () => {
      const { call } = await freshUser(t, 'attach');
      const p = await policy(call, { name: 'web', rules: SSH_ONLY });
      const q = await policy(call, { name: 'other' });
      const forms = [p.uuid, `/api/2.0/fwpolicies/${p.uuid}/`, { uuid: p.uuid }, policyRef(p.uuid)];
      const made = [];
      for (const form of forms) {
        const s = await server(call, [dhcpNic({ firewall_policy: form })]);
        assert.deepEqual(s.nics[0].firewall_policy, policyRef(p.uuid));
        made.push(s.uuid);
      }
      const plain = await server(call, [dhcpNic()]);
      assert.equal(plain.nics[0].firewall_policy, null);
      assert.deepEqual((await call('GET', `/fwpolicies/${p.uuid}/`)).body.servers, serverRefs(...made));
      assert.deepEqual(
        (await call('GET', '/fwpolicies/detail/')).body.objects.map((x: any) => x.servers.length),
        [4, 0],
      );
      // two NICs of one server on one policy: the server is listed once
      const two = await server(call, [dhcpNic({ firewall_policy: p.uuid }), dhcpNic({ firewall_policy: q.uuid })]);
      assert.equal((await call('GET', `/fwpolicies/${p.uuid}/`)).body.servers.length, 5);
      assert.deepEqual((await call('GET', `/fwpolicies/${q.uuid}/`)).body.servers, serverRefs(two.uuid));
      // the server's GET, edited and sent back, keeps its policies
      const full = (await call('GET', `/servers/${two.uuid}/`)).body;
      assert.equal((await call('PUT', `/servers/${two.uuid}/`, full)).status, 200);
      assert.deepEqual(
        (await call('GET', `/servers/${two.uuid}/`)).body.nics.map((n: any) => n.firewall_policy?.uuid),
        [p.uuid, q.uuid],
      );
      // leaving the key out keeps it; null detaches
      const kept = await call('PUT', `/servers/${two.uuid}/`, {
        nics: [
          { mac: full.nics[0].mac, ip_v4_conf: { conf: 'dhcp' } },
          { mac: full.nics[1].mac, ip_v4_conf: { conf: 'dhcp' }, firewall_policy: null },
        ],
      });
      assert.equal(kept.status, 200, kept.text);
      assert.deepEqual(
        kept.body.nics.map((n: any) => n.firewall_policy?.uuid ?? null),
        [p.uuid, null],
      );
      assert.deepEqual((await call('GET', `/fwpolicies/${q.uuid}/`)).body.servers, []);
      // a driver finds each NIC's policy in one lookup, and decides with it
      const byMac = await nicPolicies(t.running.svc.store, two.uuid);
      assert.deepEqual([...byMac.keys()], [full.nics[0].mac]);
      assert.equal(
        decide(byMac.get(full.nics[0].mac), { direction: 'in', proto: 'tcp', srcIp: '8.8.8.8', srcPort: 5000, dstIp: '10.0.0.1', dstPort: 22 }),
        'drop',
      );
      assert.equal(
        decide(byMac.get(full.nics[0].mac), { direction: 'in', proto: 'tcp', srcIp: '172.66.32.9', srcPort: 5000, dstIp: '10.0.0.1', dstPort: 22 }),
        'accept',
      );
      // the guest reads its policy from the server context
      const ctx = await contextReply(t.running.svc, two.uuid, '/nics/0/firewall_policy/rules/1/action');
      assert.equal(ctx, 'drop\n\x04');
      assert.equal(await contextReply(t.running.svc, two.uuid, '/nics/1/firewall_policy'), '\n\x04');
      // a deleted server leaves the list
      assert.equal((await call('DELETE', `/servers/${made[0]}/`)).status, 204);
      assert.deepEqual((await call('GET', `/fwpolicies/${p.uuid}/`)).body.servers, serverRefs(...made.slice(1), two.uuid));
      // a clone keeps its source's policies
      const clone = await call('POST', `/servers/${two.uuid}/action/?do=clone`, {});
      assert.equal(clone.status, 202, clone.text);
      assert.equal(clone.body.nics[0].firewall_policy.uuid, p.uuid);
      assert.ok((await call('GET', `/fwpolicies/${p.uuid}/`)).body.servers.some((s: any) => s.uuid === clone.body.uuid));
    });

    test("a VLAN NIC, an unknown policy and another account's policy are refused, and the server is not written", async () => {
      const { call } = await freshUser(t, 'refuse');
      const other = await freshUser(t, 'stranger');
      const mine = await policy(call, { name: 'mine' });
      const theirs = await policy(other.call, { name: 'theirs' });
      const vlan = (await call('POST', '/subscriptions/', [{ resource: 'vlan', amount: 1, period: '1 month' }])).body.objects[0].subscribed_object;
      const onVlan = await call('POST', '/servers/', minimalServer('v', { nics: [{ vlan, firewall_policy: mine.uuid }] }));
      assert.equal(onVlan.status, 400);
      assert.equal(onVlan.body[0].error_point, 'nics.firewall_policy');
      for (const ref of ['00000000-0000-4000-8000-000000000000', theirs.uuid]) {
        const r = await call('POST', '/servers/', minimalServer('x', { nics: [dhcpNic({ firewall_policy: ref })] }));
        assert.equal(r.status, 400);
        assert.deepEqual(r.body, [{ error_message: `Firewall policy ${ref} does not exist`, error_point: 'nics.firewall_policy', error_type: 'validation' }]);
      }
      const notRef = await call('POST', '/servers/', minimalServer('x', { nics: [dhcpNic({ firewall_policy: 'nope' })] }));
      assert.equal(notRef.status, 400);
      assert.equal(notRef.body[0].error_point, 'nics.firewall_policy');
      assert.equal((await call('GET', '/servers/')).body.meta.total_count, 0, 'no server was created');
      const s = await server(call, [dhcpNic({ firewall_policy: mine.uuid }), { vlan }]);
      const before = (await call('GET', `/servers/${s.uuid}/`)).body;
      const edits = [
        {
          nics: [
            { mac: s.nics[0].mac, ip_v4_conf: { conf: 'dhcp' }, firewall_policy: theirs.uuid },
            { mac: s.nics[1].mac, vlan },
          ],
          name: 'changed',
        },
        {
          nics: [
            { mac: s.nics[0].mac, ip_v4_conf: { conf: 'dhcp' } },
            { mac: s.nics[1].mac, vlan, firewall_policy: mine.uuid },
          ],
          name: 'changed',
        },
      ];
      for (const body of edits) {
        const r = await call('PUT', `/servers/${s.uuid}/`, body);
        assert.equal(r.status, 400, r.text);
        assert.equal(r.body[0].error_point, 'nics.firewall_policy');
      }
      assert.deepEqual((await call('GET', `/servers/${s.uuid}/`)).body, before, 'the server is as it was');
      // the stranger sees neither the policy nor, through it, the server
      assert.equal((await other.call('GET', `/fwpolicies/${mine.uuid}/`)).status, 404);
      assert.equal((await other.call('PUT', `/fwpolicies/${mine.uuid}/`, { name: 'taken' })).status, 404);
      assert.equal((await other.call('DELETE', `/fwpolicies/${mine.uuid}/`)).status, 404);
      assert.equal((await call('GET', `/fwpolicies/${mine.uuid}/`)).body.name, 'mine');
      assert.deepEqual(
        (await other.call('GET', '/fwpolicies/')).body.objects.map((p: any) => p.name),
        ['theirs'],
      );
      // turning the public NIC into a private one drops its policy rather than refusing
      const priv = await call('PUT', `/servers/${s.uuid}/`, { nics: [{ mac: s.nics[0].mac, vlan }] });
      assert.equal(priv.status, 200, priv.text);
      assert.equal(priv.body.nics[0].firewall_policy, null);
    });

    test('on a running server the firewall_policy of its NICs is the one NIC field a PUT changes; a used policy is deleted only once its servers stop', async () => {
      const { call } = await freshUser(t, 'running');
      const p = await policy(call, { name: 'p' });
      const q = await policy(call, { name: 'q' });
      const s = await server(call, [dhcpNic({ firewall_policy: p.uuid })]);
      assert.equal((await call('POST', `/servers/${s.uuid}/action/?do=start`)).status, 202);
      await statusIs(call, s.uuid, 'running');
      const mac = s.nics[0].mac;
      const r = await call('PUT', `/servers/${s.uuid}/`, {
        cpu: 2000,
        nics: [{ mac, ip_v4_conf: { conf: 'manual' }, model: 'e1000', firewall_policy: q.uuid }, dhcpNic()],
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.cpu, 1000, 'cpu of a running server is not changed');
      assert.equal(r.body.nics.length, 1, 'no NIC is added to a running server');
      assert.deepEqual(r.body.nics[0].firewall_policy, policyRef(q.uuid));
      assert.equal(r.body.nics[0].model, 'virtio');
      assert.deepEqual(r.body.nics[0].ip_v4_conf, { conf: 'dhcp', ip: null });
      assert.deepEqual((await call('GET', `/fwpolicies/${q.uuid}/`)).body.servers, serverRefs(s.uuid));
      assert.deepEqual((await call('GET', `/fwpolicies/${p.uuid}/`)).body.servers, []);
      // a policy that is not the actor's is refused on a running server too
      const foreign = await policy((await freshUser(t, 'x')).call, {});
      const bad = await call('PUT', `/servers/${s.uuid}/`, { nics: [{ mac, firewall_policy: foreign.uuid }] });
      assert.equal(bad.status, 400);
      assert.equal((await call('GET', `/servers/${s.uuid}/`)).body.nics[0].firewall_policy.uuid, q.uuid);
      // deleting it while the server runs is refused and changes nothing
      const refused = await call('DELETE', `/fwpolicies/${q.uuid}/`);
      assert.equal(refused.status, 403);
      assert.equal(refused.body[0].error_type, 'permission');
      assert.equal((await call('GET', `/fwpolicies/${q.uuid}/`)).status, 200);
      assert.equal((await call('GET', `/servers/${s.uuid}/`)).body.nics[0].firewall_policy.uuid, q.uuid);
      assert.equal((await call('POST', `/servers/${s.uuid}/action/?do=stop`)).status, 202);
      await statusIs(call, s.uuid, 'stopped');
      assert.equal((await call('DELETE', `/fwpolicies/${q.uuid}/`)).status, 204);
      assert.equal((await call('GET', `/servers/${s.uuid}/`)).body.nics[0].firewall_policy, null, 'the NIC lost the deleted policy');
      assert.equal((await nicPolicies(t.running.svc.store, s.uuid)).size, 0);
    });

    test("shared through an ACL: LIST shows it, EDIT edits it, ATTACH puts it on the grantee's NICs; only the owner deletes", async () => {
      const owner = await freshUser(t, 'owner');
      const bob = await freshUser(t, 'bob');
      const tag = (await owner.call('POST', '/tags/', { name: 'shared' })).body.objects[0].uuid;
      const p = await policy(owner.call, { name: 'shared', rules: SSH_ONLY, tags: [tag] });
      assert.deepEqual(p.tags, [{ resource_uri: `/api/2.0/tags/${tag}/`, uuid: tag }]);
      assert.deepEqual(
        (await owner.call('GET', `/fwpolicies/?tag=${tag}`)).body.objects.map((x: any) => x.uuid),
        [p.uuid],
      );
      assert.deepEqual(
        (await owner.call('GET', '/fwpolicies/?tag__name=shared')).body.objects.map((x: any) => x.uuid),
        [p.uuid],
      );
      assert.deepEqual(
        (await owner.call('GET', `/tags/${tag}/fwpolicies/detail/`)).body.objects.map((x: any) => x.name),
        ['shared'],
      );
      assert.deepEqual(
        (await owner.call('GET', `/tags/${tag}/`)).body.resources.map((x: any) => [x.res_type, x.uuid]),
        [['fwpolicies', p.uuid]],
      );
      assert.equal((await bob.call('GET', `/fwpolicies/${p.uuid}/`)).status, 404, 'nothing is shared before the ACL');
      const acl = (await owner.call('POST', '/acls/', { name: 'fw', grantees: [{ uuid: bob.uuid }], rules: [{ permission: 'LIST' }], tags: [tag] })).body
        .objects[0];
      const seen = await bob.call('GET', `/fwpolicies/${p.uuid}/`);
      assert.equal(seen.status, 200);
      assert.deepEqual(seen.body.permissions, ['LIST']);
      assert.deepEqual(seen.body.tags, []);
      assert.deepEqual(
        (await bob.call('GET', '/fwpolicies/')).body.objects.map((x: any) => x.uuid),
        [p.uuid],
      );
      assert.deepEqual((await owner.call('GET', `/fwpolicies/${p.uuid}/`)).body.grantees, [
        { permissions: ['LIST'], user: { email: null, resource_uri: `/api/2.0/user/${bob.uuid}/`, uuid: bob.uuid } },
      ]);
      assert.equal((await bob.call('PUT', `/fwpolicies/${p.uuid}/`, { name: 'mine now' })).status, 403);
      const refused = await bob.call('POST', '/servers/', minimalServer('b', { nics: [dhcpNic({ firewall_policy: p.uuid })] }));
      assert.equal(refused.status, 400, 'LIST alone does not let him attach it');
      await owner.call('PUT', `/acls/${acl.uuid}/`, { rules: [{ permission: 'LIST' }, { permission: 'EDIT' }, { permission: 'ATTACH' }] });
      const edited = await bob.call('PUT', `/fwpolicies/${p.uuid}/`, { name: 'edited by bob', rules: [{ action: 'drop', direction: 'both' }], tags: [] });
      assert.equal(edited.status, 200, edited.text);
      assert.equal(edited.body.name, 'edited by bob');
      const ownerView = (await owner.call('GET', `/fwpolicies/${p.uuid}/`)).body;
      assert.equal(ownerView.rules.length, 1);
      assert.deepEqual(
        ownerView.tags.map((x: any) => x.uuid),
        [tag],
        "a grantee cannot take the owner's tags off",
      );
      const bobs = await server(bob.call, [dhcpNic({ firewall_policy: p.uuid })]);
      assert.equal(bobs.nics[0].firewall_policy.uuid, p.uuid);
      const ownServer = await server(owner.call, [dhcpNic({ firewall_policy: p.uuid })]);
      // the owner sees every server using it; the grantee only his own
      assert.deepEqual((await owner.call('GET', `/fwpolicies/${p.uuid}/`)).body.servers, serverRefs(bobs.uuid, ownServer.uuid));
      assert.deepEqual((await bob.call('GET', `/fwpolicies/${p.uuid}/`)).body.servers, serverRefs(bobs.uuid));
      const del = await bob.call('DELETE', `/fwpolicies/${p.uuid}/`);
      assert.equal(del.status, 403);
      // the grant ends: what he attached stays (as with IPs and VLANs), but he cannot attach it anew
      await owner.call('DELETE', `/acls/${acl.uuid}/`);
      assert.equal((await bob.call('GET', `/fwpolicies/${p.uuid}/`)).status, 404);
      assert.equal((await bob.call('POST', '/servers/', minimalServer('b2', { nics: [dhcpNic({ firewall_policy: p.uuid })] }))).status, 400);
      const renamed = await bob.call('PUT', `/servers/${bobs.uuid}/`, { name: 'still mine' });
      assert.equal(renamed.status, 200);
      // the owner's delete takes it off the grantee's stopped server too
      assert.equal((await owner.call('DELETE', `/fwpolicies/${p.uuid}/`)).status, 204);
      assert.equal((await bob.call('GET', `/servers/${bobs.uuid}/`)).body.nics[0].firewall_policy, null);
    });

    test("a grantee's clone of a shared server keeps only the policies he may attach himself", async () => {
      const owner = await freshUser(t, 'cowner');
      const bob = await freshUser(t, 'cbob');
      const serverTag = (await owner.call('POST', '/tags/', { name: 'srv' })).body.objects[0].uuid;
      const policyTag = (await owner.call('POST', '/tags/', { name: 'pol' })).body.objects[0].uuid;
      const open = await policy(owner.call, { name: 'shared', tags: [policyTag] });
      const closed = await policy(owner.call, { name: 'private' });
      const s = await owner.call(
        'POST',
        '/servers/',
        minimalServer('src', { tags: [serverTag], nics: [dhcpNic({ firewall_policy: open.uuid }), dhcpNic({ firewall_policy: closed.uuid })] }),
      );
      assert.equal(s.status, 201, s.text);
      await owner.call('POST', '/acls/', {
        name: 'srv',
        grantees: [{ uuid: bob.uuid }],
        rules: [{ permission: 'LIST' }, { permission: 'CLONE' }],
        tags: [serverTag],
      });
      await owner.call('POST', '/acls/', {
        name: 'pol',
        grantees: [{ uuid: bob.uuid }],
        rules: [{ permission: 'LIST' }, { permission: 'ATTACH' }],
        tags: [policyTag],
      });
      const clone = await bob.call('POST', `/servers/${s.body.objects[0].uuid}/action/?do=clone`, {});
      assert.equal(clone.status, 202, clone.text);
      assert.deepEqual(
        clone.body.nics.map((n: any) => n.firewall_policy?.uuid ?? null),
        [open.uuid, null],
      );
      assert.deepEqual((await owner.call('GET', `/fwpolicies/${closed.uuid}/`)).body.servers, serverRefs(s.body.objects[0].uuid));
    });

    test('changes are announced (websocket events) and written to the audit log, refusals too', async () => {
      const { call, uuid: user } = await freshUser(t, 'events');
      const events: ChangeEvent[] = [];
      const stop = t.running.svc.bus.subscribe((e) => {
        if (e.owner === user) events.push(e);
      });
      const cookie = (await call('POST', '/accounts/action/?do=authenticate_asynchronous', {})).headers.get('set-cookie')!.split(';')[0]!;
      const ws = new WebSocket(t.url.replace(/^http/, 'ws') + '/websocket', { headers: { cookie } });
      const frames: any[] = [];
      ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
      await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
      try {
        const p = await policy(call, { name: 'e' });
        await call('PUT', `/fwpolicies/${p.uuid}/`, { name: 'e2' });
        assert.equal((await call('PUT', `/fwpolicies/${p.uuid}/`, { rules: [{ action: 'drop' }] })).status, 400);
        await call('DELETE', `/fwpolicies/${p.uuid}/`);
        const mine = () => events.filter((e) => e.resource_type === 'fwpolicies').map((e) => `${e.action} ${e.resource_uri}`);
        const uri = `/api/2.0/fwpolicies/${p.uuid}/`;
        const deadline = Date.now() + 10000;
        while (mine().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(mine(), [`created ${uri}`, `updated ${uri}`, `deleted ${uri}`]);
        // websocket clients get a frame for each, with the object as GET shows it while it exists
        const fw = () => frames.filter((f) => f.resource_type === 'fwpolicies');
        const framesBy = Date.now() + 10000;
        while (fw().length < 3 && Date.now() < framesBy) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(
          fw().map((f) => f.resource_uri),
          [uri, uri, uri],
        );
        assert.equal(fw()[0].object.uuid, p.uuid);
        assert.equal(fw()[2].object, undefined);
        const log = (await call('GET', `/logs/?uuid=${p.uuid}&limit=0`)).body.objects;
        assert.deepEqual(log.map((l: any) => [l.category, l.action, l.success]).reverse(), [
          ['Firewall policies', 'create', true],
          ['Firewall policies', 'update', true],
          ['Firewall policies', 'update', false],
          ['Firewall policies', 'delete', true],
        ]);
      } finally {
        stop();
        ws.terminate();
      }
    });
  });
}
