import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, type TestServer } from './helpers/harness.ts';

const ROUNDS = 3;
const PER_ROUND = 8;

// A server edit checks that the policy it attaches exists; a delete takes the policy off every server the join table
// names. On PostgreSQL (READ COMMITTED) both could pass at once without the row lock they share, leaving a NIC on a
// policy that no longer exists, or a join table that disagrees with the servers' own definitions.
for (const db of databases()) {
  describe(`deleting a firewall policy races server edits attaching it [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({}, db);
    });
    after(async () => t?.close());

    test('no NIC is ever left on a deleted policy, and the join table always agrees with the servers', async () => {
      const servers: string[] = [];
      for (let i = 0; i < PER_ROUND; i++) {
        const c = await t.call('POST', '/servers/', minimalServer(`racer-${i}`, { nics: [{ ip_v4_conf: { conf: 'dhcp' } }] }));
        assert.equal(c.status, 201, c.text);
        servers.push(c.body.objects[0].uuid);
      }
      for (let round = 0; round < ROUNDS; round++) {
        const p = (await t.call('POST', '/fwpolicies/', { name: `round ${round}` })).body.objects[0].uuid;
        const edits = servers.map(async (server, i) => {
          await new Promise((r) => setTimeout(r, i * 5));
          return (await t.call('PUT', `/servers/${server}/`, minimalServer(`racer-${i}`, { nics: [{ ip_v4_conf: { conf: 'dhcp' }, firewall_policy: p }] })))
            .status;
        });
        const del = (async () => {
          await new Promise((r) => setTimeout(r, (PER_ROUND * 5) / 2));
          return (await t.call('DELETE', `/fwpolicies/${p}/`)).status;
        })();
        const statuses = await Promise.all(edits);
        const deleted = await del;
        for (const s of statuses) assert.ok(s === 200 || s === 400, `round ${round}: an edit answered ${s}`);
        // a delete that lost to an edit may ask the client to retry; it never half-deletes
        assert.ok(deleted === 204 || deleted === 503, `round ${round}: the delete answered ${deleted}`);
        const exists = (await t.call('GET', `/fwpolicies/${p}/`)).status === 200;
        assert.equal(exists, deleted !== 204);
        const rows = (await t.running.svc.store.db.selectFrom('nic_firewall_policies').select(['server_uuid', 'mac', 'policy_uuid']).execute()) as Array<{
          server_uuid: string;
          mac: string;
          policy_uuid: string;
        }>;
        for (const uuid of servers) {
          const nic = (await t.call('GET', `/servers/${uuid}/`)).body.nics[0];
          const ref = nic.firewall_policy?.uuid ?? null;
          if (ref) assert.equal((await t.call('GET', `/fwpolicies/${ref}/`)).status, 200, `round ${round}: ${uuid} is on ${ref}, which must exist`);
          assert.deepEqual(
            rows.filter((r) => r.server_uuid === uuid).map((r) => [r.mac, r.policy_uuid]),
            ref ? [[nic.mac, ref]] : [],
            `round ${round}: the join table agrees with ${uuid}`,
          );
        }
        // detach everything before the next round
        for (const [i, uuid] of servers.entries())
          await t.call('PUT', `/servers/${uuid}/`, minimalServer(`racer-${i}`, { nics: [{ ip_v4_conf: { conf: 'dhcp' } }] }));
        if (exists) assert.equal((await t.call('DELETE', `/fwpolicies/${p}/`)).status, 204);
      }
    });
  });
}
