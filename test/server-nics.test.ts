import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';

const MAC = /^22(:[0-9a-f]{2}){5}$/;

for (const db of databases()) {
  describe(`server NICs [${db.name}]`, () => {
    let t: TestServer;
    let vlan: string;
    let ip: string;
    before(async () => {
      t = await startServer({}, db);
      const subs = await t.call('POST', '/subscriptions/', {
        objects: [
          { resource: 'ip', amount: 1, period: '1 month' },
          { resource: 'vlan', period: '1 month' },
        ],
      });
      assert.equal(subs.status, 201, subs.text);
      vlan = subs.body.objects.find((x: any) => x.resource === 'vlan').subscribed_object;
      ip = subs.body.objects.find((x: any) => x.resource === 'ip').subscribed_object;
    });
    after(async () => t.close());

    const create = async (nics: unknown[]) => {
      const r = await t.call('POST', '/servers/', minimalServer('nics', { nics }));
      assert.equal(r.status, 201, r.text);
      return r.body.objects[0];
    };
    const put = (uuid: string, nics: unknown[]) => t.call('PUT', `/servers/${uuid}/`, { nics });

    test('generated MACs are 22:xx lowercase and unique; every NIC has all its keys', async () => {
      const s = await create(Array.from({ length: 8 }, () => ({ ip_v4_conf: { conf: 'dhcp' } })));
      const macs = s.nics.map((n: any) => n.mac);
      for (const m of macs) assert.match(m, MAC);
      assert.equal(new Set(macs).size, 8);
      assert.deepEqual(Object.keys(s.nics[0]).sort(), ['boot_order', 'firewall_policy', 'ip_v4_conf', 'ip_v6_conf', 'mac', 'model', 'runtime', 'vlan']);
      assert.deepEqual(s.nics[0], {
        boot_order: null,
        firewall_policy: null,
        ip_v4_conf: { conf: 'dhcp', ip: null },
        ip_v6_conf: null,
        mac: macs[0],
        model: 'virtio',
        runtime: null,
        vlan: null,
      });
    });

    test('dhcp, static, manual, ip_v6, a VLAN, nothing at all', async () => {
      const s = await create([
        { ip_v4_conf: { conf: 'dhcp' } },
        { ip_v4_conf: { conf: 'static', ip } },
        { ip_v4_conf: { conf: 'manual' }, model: 'rtl8139', boot_order: 2 },
        { ip_v6_conf: { conf: 'dhcp' } },
        { vlan },
        {},
      ]);
      assert.deepEqual(
        s.nics.map((n: any) => [n.ip_v4_conf, n.ip_v6_conf, n.vlan?.uuid ?? null, n.model, n.boot_order]),
        [
          [{ conf: 'dhcp', ip: null }, null, null, 'virtio', null],
          [{ conf: 'static', ip: { resource_uri: `/api/2.0/ips/${ip}/`, uuid: ip } }, null, null, 'virtio', null],
          [{ conf: 'manual', ip: null }, null, null, 'rtl8139', 2],
          [null, { conf: 'dhcp', ip: null }, null, 'virtio', null],
          [null, null, vlan, 'virtio', null],
          [null, null, null, 'virtio', null],
        ],
      );
      assert.deepEqual(s.nics[4].vlan, { resource_uri: `/api/2.0/vlans/${vlan}/`, uuid: vlan });
      // conf defaults to dhcp
      const d = await create([{ ip_v4_conf: {} }]);
      assert.deepEqual(d.nics[0].ip_v4_conf, { conf: 'dhcp', ip: null });
    });

    test('forbidden combinations are refused with their messages, and change nothing', async () => {
      const cases: Array<[unknown, string, string]> = [
        [{ vlan, ip_v4_conf: { conf: 'dhcp' } }, 'nics', 'Cannot assign both Private and Public on a NIC'],
        [{ vlan, ip_v6_conf: { conf: 'dhcp' } }, 'nics', 'Cannot assign both Private and Public on a NIC'],
        [{ vlan, ip_v4_conf: { conf: 'dhcp' }, ip_v6_conf: { conf: 'dhcp' } }, 'nics', 'Cannot assign all configs on a NIC'],
        [{ ip_v4_conf: { conf: 'static' } }, 'nics.ip_v4_conf.ip', ''],
        [{ ip_v4_conf: { conf: 'dhcp', ip } }, 'nics.ip_v4_conf.ip', ''],
        [{ ip_v4_conf: { conf: 'manual', ip } }, 'nics.ip_v4_conf.ip', ''],
        [{ ip_v4_conf: 'dhcp' }, 'nics.ip_v4_conf', ''],
        [{ model: 'tulip' }, 'nics.model', ''],
        [{ boot_order: 0 }, 'nics.boot_order', ''],
        [{ vlan: 'not-a-uuid' }, 'nics.vlan', ''],
      ];
      const s = await create([{ ip_v4_conf: { conf: 'dhcp' } }]);
      for (const [nic, point, message] of cases) {
        const c = await t.call('POST', '/servers/', minimalServer('bad', { nics: [nic] }));
        assert.equal(c.status, 400, `${JSON.stringify(nic)}: ${c.text}`);
        assert.equal(c.body[0].error_point, point, JSON.stringify(nic));
        if (message) assert.equal(c.body[0].error_message, message);
        const e = await put(s.uuid, [nic]);
        assert.equal(e.status, 400);
        assert.deepEqual((await t.call('GET', `/servers/${s.uuid}/`)).body.nics, s.nics);
      }
    });

    test('NIC identity is the MAC: kept when given, new when absent, dropped when left out; unknown MACs refused', async () => {
      const s = await create([{ ip_v4_conf: { conf: 'dhcp' }, model: 'e1000' }, { vlan }]);
      const [a, b] = s.nics.map((n: any) => n.mac);
      // Rearranged: the order is the order given, MACs kept.
      const re = await put(s.uuid, [s.nics[1], s.nics[0]]);
      assert.equal(re.status, 200, re.text);
      assert.deepEqual(
        re.body.nics.map((n: any) => n.mac),
        [b, a],
      );
      assert.deepEqual(re.body.nics, [s.nics[1], s.nics[0]]);
      // An element with a known MAC is that NIC's whole new config (vlan left out = none); the model stays when omitted.
      const changed = await put(s.uuid, [{ mac: a.toUpperCase(), ip_v4_conf: { conf: 'manual' } }, { ip_v4_conf: { conf: 'dhcp' } }]);
      assert.equal(changed.status, 200, changed.text);
      assert.equal(changed.body.nics[0].mac, a);
      assert.deepEqual(changed.body.nics[0].ip_v4_conf, { conf: 'manual', ip: null });
      assert.equal(changed.body.nics[0].model, 'e1000');
      assert.equal(changed.body.nics[0].vlan, null);
      const fresh = changed.body.nics[1].mac;
      assert.match(fresh, MAC);
      assert.ok(![a, b].includes(fresh), 'a NIC without a MAC is a new NIC');
      assert.equal(changed.body.nics[1].model, 'virtio');
      // b was left out: it is gone, and its MAC cannot be brought back.
      const unknown = await put(s.uuid, [{ mac: b, vlan }]);
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body[0].error_point, 'nics.mac');
      const other = await put(s.uuid, [{ mac: '22:00:00:00:00:01', ip_v4_conf: { conf: 'dhcp' } }]);
      assert.equal(other.status, 400);
      const twice = await put(s.uuid, [{ mac: a }, { mac: a }]);
      assert.equal(twice.status, 400);
      // A MAC given at create is not one of the server's: refused.
      const atCreate = await t.call('POST', '/servers/', minimalServer('mac', { nics: [{ mac: '22:11:22:33:44:55' }] }));
      assert.equal(atCreate.status, 400);
      assert.equal(atCreate.body[0].error_point, 'nics.mac');
    });

    test("another server's MAC is unknown here", async () => {
      const s1 = await create([{ ip_v4_conf: { conf: 'dhcp' } }]);
      const s2 = await create([]);
      const r = await put(s2.uuid, [{ mac: s1.nics[0].mac }]);
      assert.equal(r.status, 400);
      assert.equal(r.body[0].error_point, 'nics.mac');
    });
  });
}
