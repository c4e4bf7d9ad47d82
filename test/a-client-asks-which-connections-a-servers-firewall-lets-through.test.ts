import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, type TestServer } from './helpers/harness.ts';

/**
 * GET /opensigma/servers/{uuid}/firewall/ answers, for each public NIC of a server, whether its firewall policy lets
 * a packet through and which rule decided: the decision the QEMU driver enforces, asked of a sim server (no QEMU).
 */
const RULES = [
  { action: 'accept', direction: 'in', ip_proto: 'tcp', dst_port: '22', src_ip: '172.66.32.0/24', comment: 'office' },
  { action: 'drop', direction: 'in', ip_proto: 'tcp', dst_port: '22' },
  { action: 'drop', direction: 'out', ip_proto: 'udp', dst_ip: '!10.0.0.0/8' },
];

for (const db of databases()) {
  describe(`asking a server's firewall [${db.name}]`, () => {
    let t: TestServer;
    let server: any;
    let policy: string;
    before(async () => {
      t = await startServer({}, db);
      const p = await t.call('POST', '/fwpolicies/', { name: 'ssh from the office', rules: RULES });
      assert.equal(p.status, 201, p.text);
      policy = p.body.objects[0].uuid;
      const s = await t.call(
        'POST',
        '/servers/',
        minimalServer('fw-ask', {
          nics: [
            { ip_v4_conf: { conf: 'dhcp' }, model: 'virtio', firewall_policy: policy },
            { ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' },
          ],
        }),
      );
      assert.equal(s.status, 201, s.text);
      server = s.body.objects[0];
    });
    after(async () => t.close());

    const ask = (q: string) => t.call('GET', `/opensigma/servers/${server.uuid}/firewall/?${q}`);

    test('inbound: the first matching rule decides, per NIC; a NIC without a policy lets everything in', async () => {
      const office = await ask('src_ip=172.66.32.9&dst_port=22');
      assert.equal(office.status, 200, office.text);
      const [fw, open] = office.body.objects;
      assert.deepEqual([fw.mac, fw.action, fw.rule, fw.firewall_policy.uuid], [server.nics[0].mac, 'accept', 0, policy]);
      assert.deepEqual([open.mac, open.action, open.rule, open.firewall_policy], [server.nics[1].mac, 'accept', null, null]);
      assert.deepEqual(fw.packet, { direction: 'in', ip_proto: 'tcp', src_ip: '172.66.32.9', src_port: null, dst_ip: null, dst_port: 22 });
      const elsewhere = (await ask(`src_ip=198.51.100.7&dst_port=22&mac=${server.nics[0].mac}`)).body.objects;
      assert.deepEqual(
        elsewhere.map((o: any) => [o.action, o.rule]),
        [['drop', 1]],
      );
      // No rule names port 80: accepted, as on CloudSigma.
      assert.deepEqual((await ask(`src_ip=198.51.100.7&dst_port=80&mac=${server.nics[0].mac}`)).body.objects[0].action, 'accept');
    });

    test('outbound and the NIC address: a running server decides with its lease as the source', async () => {
      assert.equal((await t.call('POST', `/servers/${server.uuid}/action/?do=start`)).status, 202);
      await waitFor(async () => (await t.call('GET', `/servers/${server.uuid}/`)).body.status === 'running', 15000, 'running');
      const lease = (await t.call('GET', `/servers/${server.uuid}/`)).body.runtime.nics[0].ip_v4.uuid;
      const out = (await ask(`direction=out&ip_proto=udp&dst_ip=192.0.2.1&dst_port=53&mac=${server.nics[0].mac}`)).body.objects[0];
      assert.deepEqual([out.action, out.rule, out.ip_v4, out.packet.src_ip], ['drop', 2, lease, lease]);
      const inside = (await ask(`direction=out&ip_proto=udp&dst_ip=10.1.2.3&dst_port=53&mac=${server.nics[0].mac}`)).body.objects[0];
      assert.equal(inside.action, 'accept');
      // An edit of the policy is what the next question sees.
      assert.equal((await t.call('PUT', `/fwpolicies/${policy}/`, { name: 'none', rules: [] })).status, 200);
      assert.equal((await ask(`direction=out&ip_proto=udp&dst_ip=192.0.2.1&dst_port=53&mac=${server.nics[0].mac}`)).body.objects[0].action, 'accept');
      assert.equal((await t.call('PUT', `/fwpolicies/${policy}/`, { name: 'ssh from the office', rules: RULES })).status, 200);
      assert.equal((await t.call('POST', `/servers/${server.uuid}/action/?do=stop`)).status, 202);
    });

    test('bad questions answer the error array naming the parameter', async () => {
      for (const [q, point] of [
        ['dst_port=22', 'src_ip'],
        ['src_ip=1.2.3&dst_port=22', 'src_ip'],
        ['src_ip=1.2.3.4&dst_port=70000', 'dst_port'],
        ['src_ip=1.2.3.4', 'dst_port'],
        ['direction=sideways&src_ip=1.2.3.4&dst_port=1', 'direction'],
        ['direction=out&dst_port=1', 'dst_ip'],
        ['src_ip=1.2.3.4&dst_port=1&mac=22:00:00:00:00:00', 'mac'],
      ]) {
        const r = await ask(q!);
        assert.equal(r.status, 400, `${q}: ${r.text}`);
        assert.equal(r.body[0].error_point, point, q);
        assert.equal(r.body[0].error_type, 'validation');
      }
      const other = await t.call('GET', '/opensigma/servers/00000000-0000-4000-8000-000000000000/firewall/?src_ip=1.2.3.4&dst_port=1');
      assert.equal(other.status, 404);
    });
  });
}
