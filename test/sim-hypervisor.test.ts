import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databases, minimalServer, startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';

const GiB = 2 ** 30;

async function create(t: TestServer, name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await t.call('POST', '/servers/', minimalServer(name, extra));
  assert.equal(r.status, 201, r.text);
  return r.body.objects[0].uuid;
}

async function act(t: TestServer, uuid: string, action: string, query = '') {
  return t.call('POST', `/servers/${uuid}/action/?do=${action}${query}`);
}

async function startAndWait(t: TestServer, uuid: string, query = ''): Promise<any> {
  const r = await act(t, uuid, 'start', query);
  assert.equal(r.status, 202, r.text);
  return waitForStatus(t, uuid, 'running');
}

const dhcpNic = { nics: [{ ip_v4_conf: { conf: 'dhcp' } }] };

for (const db of databases()) {
  describe(`simulated hypervisor through the API [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_ACPI_TIMEOUT_S: '2', OPENSIGMA_SIM_HOSTS: '3' }, db);
    });
    after(async () => t.close());

    test('shutdown: the guest obeys ACPI, the server goes stopping then stopped', async () => {
      const uuid = await create(t, 'acpi-obeys');
      await startAndWait(t, uuid);
      const r = await act(t, uuid, 'shutdown');
      assert.equal(r.status, 202);
      assert.deepEqual(r.body, { action: 'shutdown', result: 'success', uuid });
      assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.status, 'stopping');
      const s = await waitForStatus(t, uuid, 'stopped');
      assert.equal(s.runtime, null);
    });

    test('shutdown of a guest that ignores ACPI: stopping until the timeout, then running again', async () => {
      const uuid = await create(t, 'acpi-ignores', { meta: { sim_acpi: 'ignore' } });
      const before = await startAndWait(t, uuid);
      assert.equal((await act(t, uuid, 'shutdown')).status, 202);
      assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.status, 'stopping');
      const s = await waitForStatus(t, uuid, 'running', 10000);
      assert.equal(s.runtime.active_since, before.runtime.active_since, 'the same guest kept running');
      // A hard stop still works on it.
      assert.equal((await act(t, uuid, 'stop')).status, 202);
      await waitForStatus(t, uuid, 'stopped');
    });

    test('sim_fail_next=start: the start is accepted, then the server is back to stopped; the next start works', async () => {
      const uuid = await create(t, 'fails-once', { meta: { sim_fail_next: 'start' } });
      assert.equal((await act(t, uuid, 'start')).status, 202);
      // Another client, looking at the list, sees it stopped again.
      await waitFor(async () => {
        const l = await t.call('GET', `/servers/?uuid=${uuid}`);
        return l.body.objects[0]?.status === 'stopped';
      });
      const s = (await t.call('GET', `/servers/${uuid}/`)).body;
      assert.equal(s.runtime, null);
      await startAndWait(t, uuid);
      await act(t, uuid, 'stop');
      await waitForStatus(t, uuid, 'stopped');
    });

    test('sim_fail_next=stop: the stop fails, the server is running again, a second stop works', async () => {
      const uuid = await create(t, 'stop-fails', { meta: { sim_fail_next: 'stop' } });
      await startAndWait(t, uuid);
      assert.equal((await act(t, uuid, 'stop')).status, 202);
      await waitForStatus(t, uuid, 'running');
      assert.equal((await act(t, uuid, 'stop')).status, 202);
      await waitForStatus(t, uuid, 'stopped');
    });

    test('sim_hang_next=start: the server stays starting; a stop pulls the plug and it is stopped', async () => {
      const uuid = await create(t, 'hangs', { meta: { sim_hang_next: 'start' } });
      assert.equal((await act(t, uuid, 'start')).status, 202);
      await new Promise((r) => setTimeout(r, 500)); // ten sim phases: a normal start would be done
      assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.status, 'starting');
      const again = await act(t, uuid, 'start');
      assert.equal(again.status, 403);
      const stop = await act(t, uuid, 'stop');
      assert.equal(stop.status, 202, stop.text);
      await waitForStatus(t, uuid, 'stopped');
      // Nothing is left behind: it starts normally now, and reconciliation leaves it running.
      await startAndWait(t, uuid);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.status, 'running');
      await act(t, uuid, 'stop');
      await waitForStatus(t, uuid, 'stopped');
    });

    test('sim_hang_next=stop: a second stop is refused while the first may still finish, accepted once it is overdue', async () => {
      const uuid = await create(t, 'stop-hangs', { meta: { sim_hang_next: 'stop' } });
      await startAndWait(t, uuid);
      assert.equal((await act(t, uuid, 'stop')).status, 202);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await t.call('GET', `/servers/${uuid}/`)).body.status, 'stopping');
      assert.equal((await act(t, uuid, 'stop')).status, 403);
      await new Promise((r) => setTimeout(r, 2100)); // OPENSIGMA_ACPI_TIMEOUT_S of this server
      const again = await act(t, uuid, 'stop');
      assert.equal(again.status, 202, again.text);
      await waitForStatus(t, uuid, 'stopped');
    });

    test('placement honours avoid=: the servers land on different hosts, as availability groups show', async () => {
      const a = await create(t, 'ag-a');
      const b = await create(t, 'ag-b');
      const c = await create(t, 'ag-c');
      await startAndWait(t, a);
      await startAndWait(t, b, `&avoid=${a}`);
      await startAndWait(t, c, `&avoid=${a},${b}`);
      const groups = (await t.call('GET', '/servers/availability_groups/')).body as string[][];
      const groupOf = (u: string) => groups.findIndex((g) => g.includes(u));
      assert.notEqual(groupOf(a), -1);
      assert.equal(new Set([groupOf(a), groupOf(b), groupOf(c)]).size, 3, JSON.stringify(groups));
      const one = await t.call('GET', `/servers/availability_groups/${b}/`);
      assert.equal(one.status, 200);
      assert.ok(one.body.includes(b));
      assert.ok(!one.body.includes(a) && !one.body.includes(c));
      // Without avoid, a fourth server shares a host with one of them (three hosts).
      const d = await create(t, 'ag-d');
      await startAndWait(t, d, `&avoid=${a},${b},${c}`);
      const mine = (await t.call('GET', `/servers/availability_groups/${d}/`)).body as string[];
      assert.equal(mine.length, 2, 'avoid is best effort: with every host taken, d shares one');
      for (const u of [a, b, c, d]) await act(t, u, 'stop');
      for (const u of [a, b, c, d]) await waitForStatus(t, u, 'stopped');
      assert.deepEqual((await t.call('GET', `/servers/availability_groups/${a}/`)).body, []);
    });

    test('DHCP addresses are unique across running servers and released on stop', async () => {
      const ids = [await create(t, 'dhcp-1', dhcpNic), await create(t, 'dhcp-2', dhcpNic), await create(t, 'dhcp-3', dhcpNic)];
      const ips: string[] = [];
      for (const u of ids) ips.push((await startAndWait(t, u)).runtime.nics[0].ip_v4.uuid);
      assert.equal(new Set(ips).size, 3, ips.join(' '));
      await act(t, ids[0]!, 'stop');
      await waitForStatus(t, ids[0]!, 'stopped');
      const fresh = await create(t, 'dhcp-4', dhcpNic);
      const got = (await startAndWait(t, fresh)).runtime.nics[0].ip_v4.uuid;
      assert.equal(got, ips[0], 'the released address is handed out again');
      const rt = await t.call('GET', `/servers/${fresh}/runtime/`);
      assert.equal(rt.status, 200);
      assert.equal(rt.body.nics[0].ip_v4.uuid, got);
      for (const u of [...ids.slice(1), fresh]) await act(t, u, 'stop');
      for (const u of [...ids.slice(1), fresh]) await waitForStatus(t, u, 'stopped');
    });

    test('I/O counters in runtime grow while the server runs', async () => {
      const uuid = await create(t, 'io', dhcpNic);
      await startAndWait(t, uuid);
      const nicIo = async () => (await t.call('GET', `/servers/${uuid}/runtime/`)).body.nics[0].io;
      const first = await nicIo();
      const grown = await waitFor(
        async () => {
          const io = await nicIo();
          return io.bytes_recv > first.bytes_recv && io.packets_sent > first.packets_sent ? io : null;
        },
        15000,
        'io counters to grow',
      );
      assert.ok(grown.bytes_sent > 0);
      await act(t, uuid, 'stop');
      await waitForStatus(t, uuid, 'stopped');
    });

    test('restart: the guest reboots in place and the server stays running', async () => {
      const uuid = await create(t, 'restarts');
      assert.equal((await act(t, uuid, 'restart')).status, 403, 'a stopped server cannot restart');
      const before = await startAndWait(t, uuid);
      await new Promise((r) => setTimeout(r, 1100)); // active_since has a resolution of one second
      const r = await act(t, uuid, 'restart');
      assert.equal(r.status, 202);
      assert.deepEqual(r.body, { action: 'restart', result: 'success', uuid });
      const after = await waitFor(async () => {
        const s = (await t.call('GET', `/servers/${uuid}/`)).body;
        return s.status === 'running' && s.runtime.active_since !== before.runtime.active_since ? s : null;
      });
      assert.ok(after.runtime.active_since > before.runtime.active_since);
      await act(t, uuid, 'stop');
      await waitForStatus(t, uuid, 'stopped');
    });
  });

  describe(`simulated hypervisor capacity [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_SIM_HOSTS: '2', OPENSIGMA_SIM_HOST_MEM: String(1 * GiB) }, db);
    });
    after(async () => t.close());

    test('out of capacity answers 503 with a concurrency error array and changes nothing', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await create(t, `cap-${i}`));
      for (const u of ids.slice(0, 4)) await startAndWait(t, u);
      const r = await act(t, ids[4]!, 'start');
      assert.equal(r.status, 503);
      assert.equal(r.body.length, 1);
      assert.equal(r.body[0].error_type, 'concurrency');
      assert.equal(typeof r.body[0].error_message, 'string');
      assert.equal((await t.call('GET', `/servers/${ids[4]}/`)).body.status, 'stopped');
      // Room again once one stops.
      await act(t, ids[0]!, 'stop');
      await waitForStatus(t, ids[0]!, 'stopped');
      await startAndWait(t, ids[4]!);
    });
  });
}
