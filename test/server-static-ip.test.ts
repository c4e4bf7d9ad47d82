import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';

for (const db of databases()) {
  describe(`static IPs and VLANs on server NICs [${db.name}]`, () => {
    let t: TestServer;
    let ip: string;
    let ip2: string;
    let vlan: string;
    let othersIp: string;
    let othersVlan: string;
    const other = () => t.as('other@example.com', 'other-password');
    before(async () => {
      t = await startServer({}, db);
      await t.running.svc.store.users.create('other@example.com', 'other-password');
      [ip, ip2] = (await t.call('POST', '/subscriptions/', [{ resource: 'ip', amount: 2, period: '1 month' }])).body.objects.map(
        (s: any) => s.subscribed_object,
      );
      vlan = (await t.call('POST', '/subscriptions/', [{ resource: 'vlan', period: '1 month' }])).body.objects[0].subscribed_object;
      othersIp = (await other()('POST', '/subscriptions/', [{ resource: 'ip', period: '1 month' }])).body.objects[0].subscribed_object;
      othersVlan = (await other()('POST', '/subscriptions/', [{ resource: 'vlan', period: '1 month' }])).body.objects[0].subscribed_object;
    });
    after(async () => t.close());

    const staticNic = (addr: string) => ({ ip_v4_conf: { conf: 'static', ip: addr } });

    test('a static IP attaches: the NIC refers to it, the IP shows the server, the running guest gets it', async () => {
      const c = await t.call('POST', '/servers/', minimalServer('static', { nics: [staticNic(ip), { vlan }] }));
      assert.equal(c.status, 201, JSON.stringify(c.body));
      const s = c.body.objects[0];
      assert.deepEqual(s.nics[0].ip_v4_conf, { conf: 'static', ip: { resource_uri: `/api/2.0/ips/${ip}/`, uuid: ip } });
      assert.deepEqual(s.nics[1].vlan, { resource_uri: `/api/2.0/vlans/${vlan}/`, uuid: vlan });
      assert.equal(s.nics[0].firewall_policy, null);
      const got = await t.call('GET', `/ips/${ip}/`);
      assert.deepEqual(got.body.server, { resource_uri: `/api/2.0/servers/${s.uuid}/`, uuid: s.uuid });
      const short = await t.call('GET', `/ips/?uuid=${ip}`);
      assert.equal(short.body.objects[0].server.uuid, s.uuid);
      assert.deepEqual((await t.call('GET', `/vlans/${vlan}/`)).body.servers, [{ resource_uri: `/api/2.0/servers/${s.uuid}/`, uuid: s.uuid }]);
      await t.call('POST', `/servers/${s.uuid}/action/?do=start`);
      const running = await waitForStatus(t, s.uuid, 'running');
      assert.equal(running.nics[0].runtime.ip_v4.uuid, ip);
      assert.equal(running.nics[1].runtime.interface_type, 'private');
      await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
      await waitForStatus(t, s.uuid, 'stopped');
    });

    test('the same IP on a second server is refused with 403 naming the holder; nothing is created', async () => {
      const holder = (await t.call('GET', `/ips/${ip}/`)).body.server.uuid;
      const before = (await t.call('GET', '/servers/?limit=0')).body.meta.total_count;
      const r = await t.call('POST', '/servers/', minimalServer('thief', { nics: [staticNic(ip)] }));
      assert.equal(r.status, 403);
      assert.equal(r.body[0].error_type, 'permission');
      assert.equal(r.body[0].error_point, 'nics.ip_v4_conf.ip');
      assert.equal(r.headers.get('x-opensigma-error-code'), 'OS_ERR_IP_IN_USE');
      assert.ok(r.body[0].error_message.includes(ip) && r.body[0].error_message.includes(holder));
      assert.equal((await t.call('GET', '/servers/?limit=0')).body.meta.total_count, before);
      const two = await t.call('POST', '/servers/', minimalServer('twice', { nics: [staticNic(ip2), staticNic(ip2)] }));
      assert.equal(two.status, 400);
    });

    test('an IP or VLAN that is not yours (or does not exist) is refused with 400', async () => {
      for (const addr of [othersIp, '192.0.2.10', '10.200.0.5']) {
        const r = await t.call('POST', '/servers/', minimalServer('nope', { nics: [staticNic(addr)] }));
        assert.equal(r.status, 400, addr);
        assert.equal(r.body[0].error_point, 'nics.ip_v4_conf.ip');
        assert.equal(r.headers.get('x-opensigma-error-code'), 'OS_ERR_IP_NOT_YOURS', addr);
      }
      for (const v of [othersVlan, '00000000-0000-4000-8000-000000000000']) {
        const r = await t.call('POST', '/servers/', minimalServer('nope', { nics: [{ vlan: v }] }));
        assert.equal(r.status, 400);
        assert.equal(r.body[0].error_point, 'nics.vlan');
      }
      const r = await other()('POST', '/servers/', minimalServer('theirs', { nics: [staticNic(ip2)] }));
      assert.equal(r.status, 400);
    });

    test('moving an IP: detach it from one server (PUT), then another may take it; editing a holder keeps it', async () => {
      const a = (await t.call('POST', '/servers/', minimalServer('a', { nics: [staticNic(ip2)] }))).body.objects[0];
      const renamed = await t.call('PUT', `/servers/${a.uuid}/`, { ...minimalServer('a-renamed'), nics: [{ ...staticNic(ip2), mac: a.nics[0].mac }] });
      assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
      const b = await t.call('POST', '/servers/', minimalServer('b', { nics: [staticNic(ip2)] }));
      assert.equal(b.status, 403);
      const detach = await t.call('PUT', `/servers/${a.uuid}/`, { nics: [{ ip_v4_conf: { conf: 'dhcp' }, mac: a.nics[0].mac }] });
      assert.equal(detach.status, 200);
      assert.equal((await t.call('GET', `/ips/${ip2}/`)).body.server, null);
      const b2 = await t.call('POST', '/servers/', minimalServer('b', { nics: [staticNic(ip2)] }));
      assert.equal(b2.status, 201);
      assert.equal((await t.call('GET', `/ips/${ip2}/`)).body.server.uuid, b2.body.objects[0].uuid);
      // deleting the holder frees the address
      assert.equal((await t.call('DELETE', `/servers/${b2.body.objects[0].uuid}/`)).status, 204);
      assert.equal((await t.call('GET', `/ips/${ip2}/`)).body.server, null);
    });

    test('clone turns a static IP into DHCP and keeps the VLAN', async () => {
      const holder = (await t.call('GET', `/ips/${ip}/`)).body.server.uuid;
      const c = await t.call('POST', `/servers/${holder}/action/?do=clone`, {});
      assert.equal(c.status, 202, JSON.stringify(c.body));
      assert.deepEqual(c.body.nics[0].ip_v4_conf, { conf: 'dhcp', ip: null });
      assert.equal(c.body.nics[1].vlan.uuid, vlan);
      assert.equal((await t.call('GET', `/ips/${ip}/`)).body.server.uuid, holder);
      const servers = (await t.call('GET', `/vlans/${vlan}/`)).body.servers.map((s: any) => s.uuid);
      assert.deepEqual(servers.sort(), [holder, c.body.uuid].sort());
    });

    test('an IP subscription that ends while attached keeps the IP until the server lets go', async () => {
      const holder = (await t.call('GET', `/ips/${ip}/`)).body.server.uuid;
      const store = t.running.svc.store;
      const sub = (await t.call('GET', `/subscriptions/?resource=ip&limit=0`)).body.objects.find((s: any) => s.subscribed_object === ip);
      await t.call('POST', `/subscriptions/${sub.id}/action/?do=auto_renew`, { auto_renew: false });
      const row = (await store.subscriptions.get(sub.uuid))!;
      await store.subscriptions.update({ ...row.doc, start_time: '2020-01-01T12:00:00+00:00', end_time: '2020-02-01T12:00:00+00:00' });
      assert.equal((await t.call('GET', `/ips/${ip}/`)).status, 200);
      assert.equal((await t.call('GET', `/subscriptions/${sub.id}/`)).body.status, 'expired');
      const h = (await t.call('GET', `/servers/${holder}/`)).body;
      assert.equal((await t.call('PUT', `/servers/${holder}/`, { nics: [{ ip_v4_conf: { conf: 'dhcp' }, mac: h.nics[0].mac }, h.nics[1]] })).status, 200);
      assert.equal((await t.call('GET', `/ips/${ip}/`)).status, 404);
    });
  });
}
