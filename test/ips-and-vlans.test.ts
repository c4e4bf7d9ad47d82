import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';

const transcriptBody = (name: string) =>
  JSON.parse(
    fs
      .readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')
      .split(/\r?\n\r?\n/)
      .slice(1)
      .join('\n\n'),
  );
const keysOf = (o: object) => Object.keys(o).sort();

for (const db of databases()) {
  describe(`ips and vlans [${db.name}]`, () => {
    let t: TestServer;
    let ip: string;
    let vlan: string;
    const other = () => t.as('other@example.com', 'other-password');
    before(async () => {
      t = await startServer({ OPENSIGMA_IP_POOL: '203.0.113.0/24' }, db);
      await t.running.svc.store.users.create('other@example.com', 'other-password');
      ip = (await t.call('POST', '/subscriptions/', [{ resource: 'ip', amount: 1, period: '1 month' }])).body.objects[0].subscribed_object;
      vlan = (await t.call('POST', '/subscriptions/', [{ resource: 'vlan', amount: 1, period: '1 month' }])).body.objects[0].subscribed_object;
    });
    after(async () => t.close());

    test('IP list, detail list and get have the fields of the transcripts', async () => {
      const short = await t.call('GET', '/ips/?limit=0');
      assert.equal(short.status, 200);
      assert.deepEqual(keysOf(short.body.objects[0]), keysOf(transcriptBody('response_ip_list').objects[0]));
      assert.deepEqual(short.body.objects[0], { owner: short.body.objects[0].owner, resource_uri: `/api/2.0/ips/${ip}/`, server: null, uuid: ip });
      const detail = await t.call('GET', '/ips/detail/?limit=0');
      assert.deepEqual(keysOf(detail.body.objects[0]), keysOf(transcriptBody('response_ip_list_detail').objects[0]));
      const got = await t.call('GET', `/ips/${ip}/`);
      assert.deepEqual(keysOf(got.body), keysOf(transcriptBody('response_ip_get')));
      assert.equal(got.body.netmask, 24);
      assert.equal(got.body.gateway, '203.0.113.1');
      assert.deepEqual(got.body.nameservers, ['203.0.113.1']);
      assert.equal(got.body.owner.resource_uri, `/api/2.0/user/${got.body.owner.uuid}/`);
    });

    test('PUT of the transcript body changes meta and answers the full object', async () => {
      const body = transcriptBody('request_ip_update');
      const r = await t.call('PUT', `/ips/${ip}/`, body);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.meta, body.meta);
      assert.deepEqual(keysOf(r.body), keysOf(transcriptBody('response_ip_update')));
      assert.equal((await t.call('GET', `/ips/?name=my ip`)).body.meta.total_count, 1);
      assert.equal((await t.call('GET', `/ips/?name__contains=MY`)).body.meta.total_count, 1);
      assert.equal((await t.call('GET', `/ips/?name=nope`)).body.meta.total_count, 0);
    });

    test('VLAN list, get and PUT have the fields of the transcripts', async () => {
      const short = await t.call('GET', '/vlans/?limit=0');
      assert.deepEqual(keysOf(short.body.objects[0]), keysOf(transcriptBody('response_vlan_list').objects[0]));
      const got = await t.call('GET', `/vlans/${vlan}/`);
      assert.deepEqual(keysOf(got.body), keysOf(transcriptBody('response_vlan_get')));
      assert.equal(got.body.bottom_vlan_tag, null);
      assert.deepEqual(got.body.servers, []);
      const body = transcriptBody('request_vlan_update');
      const put = await t.call('PUT', `/vlans/${vlan}/`, body);
      assert.equal(put.status, 200);
      assert.deepEqual(put.body.meta, body.meta);
      assert.deepEqual(keysOf(put.body), keysOf(transcriptBody('response_vlan_update')));
      const detail = await t.call('GET', '/vlans/detail/');
      assert.deepEqual(detail.body.objects[0], put.body);
    });

    test('tags: PUT sets them, tag and tag__name filter ips and vlans; unknown tags are refused', async () => {
      const tag = (await t.call('POST', '/tags/', { objects: [{ name: 'net-tag' }] })).body.objects[0];
      const r = await t.call('PUT', `/ips/${ip}/`, { tags: [tag.uuid] });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.tags, [{ resource_uri: `/api/2.0/tags/${tag.uuid}/`, uuid: tag.uuid }]);
      assert.equal((await t.call('PUT', `/vlans/${vlan}/`, { tags: [tag.uuid] })).status, 200);
      assert.equal((await t.call('GET', `/ips/?tag=${tag.uuid}`)).body.meta.total_count, 1);
      assert.equal((await t.call('GET', `/ips/?tag__name=net-tag`)).body.meta.total_count, 1);
      assert.equal((await t.call('GET', `/vlans/?tag__name=net-tag`)).body.meta.total_count, 1);
      assert.equal((await t.call('GET', `/vlans/?tag__name=other`)).body.meta.total_count, 0);
      const bad = await t.call('PUT', `/ips/${ip}/`, { tags: ['00000000-0000-4000-8000-000000000000'] });
      assert.equal(bad.status, 400);
      assert.equal(bad.body[0].error_point, 'tags');
      assert.equal((await t.call('GET', `/ips/${ip}/`)).body.tags.length, 1, 'nothing changed');
    });

    test('bad input and other accounts: error arrays, nothing changes', async () => {
      assert.equal((await t.call('PUT', `/ips/${ip}/`, { meta: 'x' })).status, 400);
      assert.equal((await t.call('PUT', `/ips/${ip}/`, { meta: { k: { nested: 1 } } })).status, 400);
      assert.equal((await t.call('PUT', `/vlans/${vlan}/`, [1, 2])).status, 400);
      assert.equal((await t.call('GET', '/ips/192.0.2.77/')).status, 404);
      assert.equal((await t.call('GET', '/ips/not-an-ip/')).status, 404);
      assert.equal((await t.call('GET', '/vlans/00000000-0000-4000-8000-000000000000/')).status, 404);
      const o = other();
      assert.equal((await o('GET', `/ips/${ip}/`)).status, 404);
      assert.equal((await o('PUT', `/ips/${ip}/`, { meta: { x: 'y' } })).status, 404);
      assert.equal((await o('GET', `/vlans/${vlan}/`)).status, 404);
      assert.equal((await o('PUT', `/vlans/${vlan}/`, { meta: {} })).status, 404);
      assert.equal((await o('GET', '/ips/')).body.meta.total_count, 0);
      assert.equal((await o('GET', '/vlans/detail/')).body.meta.total_count, 0);
      assert.equal((await t.call('GET', `/ips/${ip}/`)).body.meta.name, 'my ip');
      assert.equal((await t.call('DELETE', `/ips/${ip}/`)).status, 405);
      assert.equal((await t.call('POST', `/ips/`, {})).status, 405);
    });

    test('a running server with a DHCP NIC shows its dynamic address under /ips/; it is read-only and goes at stop', async () => {
      const s = (await t.call('POST', '/servers/', minimalServer('dyn', { nics: [{ ip_v4_conf: { conf: 'dhcp' } }] }))).body.objects[0];
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      const running = await waitForStatus(t, s.uuid, 'running');
      const addr = running.nics[0].runtime.ip_v4.uuid;
      assert.equal(running.nics[0].runtime.ip_v4.resource_uri, `/api/2.0/ips/${addr}/`);
      const got = await t.call('GET', `/ips/${addr}/`);
      assert.equal(got.status, 200);
      assert.equal(got.body.subscription, null);
      assert.deepEqual(got.body.server, { resource_uri: `/api/2.0/servers/${s.uuid}/`, uuid: s.uuid });
      assert.equal(got.body.gateway, '127.202.0.1');
      assert.equal(got.body.netmask, 16);
      const list = await t.call('GET', '/ips/?limit=0');
      assert.ok(list.body.objects.some((x: any) => x.uuid === addr));
      assert.equal((await t.call('GET', `/ips/?uuid=${addr}`)).body.meta.total_count, 1);
      assert.equal(
        (await t.call('GET', `/ips/?name=my ip`)).body.objects.some((x: any) => x.uuid === addr),
        false,
      );
      const put = await t.call('PUT', `/ips/${addr}/`, { meta: { a: 'b' } });
      assert.equal(put.status, 403);
      assert.equal(put.body[0].error_type, 'permission');
      assert.equal((await other()('GET', `/ips/${addr}/`)).status, 404);
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitForStatus(t, s.uuid, 'stopped');
      assert.equal((await t.call('GET', `/ips/${addr}/`)).status, 404);
    });

    test('schemas are served as CloudSigma does', async () => {
      assert.deepEqual((await t.call('GET', '/ips/schema/')).body, transcriptBody('response_ip_schema'));
      assert.deepEqual((await t.call('GET', '/vlans/schema/')).body, transcriptBody('response_vlan_schema'));
    });

    test('the IP and DHCP pools may not overlap', async () => {
      const { loadConfig } = await import('../src/config.ts');
      assert.throws(() => loadConfig({ OPENSIGMA_IP_POOL: '127.202.5.0/24' }, {}), /overlaps OPENSIGMA_DHCP_POOL/);
      assert.throws(() => loadConfig({ OPENSIGMA_IP_POOL: '198.51.100.0/33' }, {}), /OPENSIGMA_IP_POOL/);
      assert.throws(() => loadConfig({ OPENSIGMA_VLAN_POOL: '-1' }, {}), /OPENSIGMA_VLAN_POOL/);
      assert.doesNotThrow(() => loadConfig({ OPENSIGMA_IP_POOL: '10.201.0.0/24' }, {}));
    });
  });
}
