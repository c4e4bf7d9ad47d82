import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import type { GuestSpec, HypervisorDriver } from '../src/hypervisor/driver.ts';
import { DriverError } from '../src/hypervisor/driver.ts';
import { QemuDriver } from '../src/hypervisor/qemu/index.ts';
import { qemuHarness, readUntil, PROMPT, tempDataDir } from './helpers/drivers.ts';

/**
 * Real-guest behaviour only QEMU has: the server context read live from inside the guest over ttyS1, and private
 * VLANs (two guests on one VLAN reach each other; a guest on another VLAN sees nothing). Three guests at 128 MiB.
 */
const h = qemuHarness();

describe('qemu guests: server context and private VLANs', { skip: h.skip ?? false }, () => {
  let dataDir: string;
  let driver: HypervisorDriver;
  let name = 'alpha';
  const specs: GuestSpec[] = [];
  const consoles = new Map<string, Duplex>();
  const context = async (uuid: string, req: string) => {
    const doc = { uuid, name, meta: { role: 'web' } };
    if (req === '') return JSON.stringify(doc);
    const key = req.replace(/^\//, '');
    if (key === 'name') return name;
    if (key === 'meta/role') return 'web';
    return '';
  };
  const vlanA = 'aaaaaaaa-0000-4000-8000-000000000001';
  const vlanB = 'bbbbbbbb-0000-4000-8000-000000000002';
  const priv = (vlan: string, i: number): GuestSpec['nics'][number] => ({
    mac: `22:77:00:00:00:0${i}`,
    model: 'virtio',
    boot_order: null,
    kind: 'private',
    ip: null,
    vlan,
  });

  async function run(con: Duplex, cmd: string, until: RegExp, timeoutMs = 20_000): Promise<string> {
    con.write(`${cmd}\n`);
    return readUntil(con, until, timeoutMs, false);
  }

  before(async () => {
    dataDir = tempDataDir('qemu-guest');
    driver = h.create(dataDir, context);
    specs.push(
      h.spec(dataDir, { context: true, nics: [priv(vlanA, 1)] }),
      h.spec(dataDir, { nics: [priv(vlanA, 2)] }),
      h.spec(dataDir, { nics: [priv(vlanB, 3)] }),
    );
    for (const s of specs) await driver.start(s);
    for (const s of specs) {
      const con = await driver.attachSerial(s.uuid);
      con.on('error', () => {});
      consoles.set(s.uuid, con);
    }
    for (const s of specs) await readUntil(consoles.get(s.uuid)!, PROMPT, h.bootTimeoutMs);
  });

  after(async () => {
    for (const c of consoles.values()) c.destroy();
    for (const s of specs) await driver.powerOff(s.uuid).catch(() => {});
    await driver.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('the guest reads its server context on ttyS1, live', async () => {
    const con = consoles.get(specs[0]!.uuid)!;
    const whole = await run(con, 'context', /\n(\{.*\})\n/);
    const doc = JSON.parse(/\n(\{.*\})\n/.exec(whole)![1]!) as { uuid: string; name: string };
    assert.equal(doc.uuid, specs[0]!.uuid);
    assert.match(await run(con, 'context name', /\nalpha\n/), /\nalpha\n/);
    name = 'alpha-renamed';
    assert.match(await run(con, 'context /name', /\nalpha-renamed\n/), /\nalpha-renamed\n/);
    assert.match(await run(con, 'context meta/role', /\nweb\n/), /\nweb\n/);
  });

  test('two guests on one private VLAN reach each other; a guest on another VLAN gets nothing', async () => {
    const [a, b, c] = specs.map((s) => consoles.get(s.uuid)!);
    let i = 1;
    for (const con of [a!, b!, c!]) {
      // Private NICs get no DHCP: stop the client and address the NIC by hand.
      await run(con, `killall udhcpc; ip addr flush dev eth0; ip addr add 192.168.77.${i++}/24 dev eth0; echo addr-done`, /\naddr-done\n/);
    }
    const ok = await run(a!, 'ping -c 2 -W 3 192.168.77.2', /packet loss/, 30_000);
    assert.match(ok, /2 packets received/);
    const none = await run(a!, 'ping -c 2 -W 1 192.168.77.3', /packet loss/, 30_000);
    assert.match(none, /0 packets received/);
    const sa = (await driver.stats(specs[0]!.uuid))!.nics['22:77:00:00:00:01']!;
    const sc = (await driver.stats(specs[2]!.uuid))!.nics['22:77:00:00:00:03']!;
    assert.ok(sa.packets_sent >= 2 && sa.packets_recv >= 2 && sa.bytes_sent > 0, JSON.stringify(sa));
    assert.equal(sc.packets_recv, 0, `the guest alone on its VLAN received nothing: ${JSON.stringify(sc)}`);
  });

  test('after a restart of the driver the VLAN and the context port work again', async () => {
    await driver.close();
    driver = h.create(dataDir, context);
    assert.equal((await driver.guests()).length, 3);
    const a = consoles.get(specs[0]!.uuid)!;
    assert.match(await run(a, 'ping -c 2 -W 3 192.168.77.2', /packet loss/, 30_000), /2 packets received/);
    assert.match(await run(a, 'context name', /\nalpha-renamed\n/), /\nalpha-renamed\n/);
    assert.ok((await driver.stats(specs[0]!.uuid))!.nics['22:77:00:00:00:01']!.packets_sent >= 2);
  });
});

describe('qemu capacity', { skip: h.skip ?? false }, () => {
  test('a guest is admitted only if its memory plus QEMU overhead fits; the refusal leaves nothing behind', async () => {
    const dataDir = tempDataDir('qemu-cap');
    const MiB = 2 ** 20;
    const driver = new QemuDriver({ dataDir, capacity: { mem: 600 * MiB }, perGuestOverhead: 128 * MiB, vncDisplayBase: 700 });
    const a = h.spec(dataDir, { mem: 256 * MiB });
    const b = h.spec(dataDir, { mem: 128 * MiB });
    try {
      assert.deepEqual(driver.capacity().mem, 600 * MiB);
      await driver.start(a); // 384 MiB of 600
      await assert.rejects(
        driver.start(b),
        (e: unknown) => e instanceof DriverError && e.code === 'capacity' && /640 MiB needed, 600 MiB available/.test(e.message),
      );
      assert.deepEqual(h.leftovers(dataDir, b.uuid), []);
      await driver.powerOff(a.uuid);
      await driver.start(b); // fits once the first is gone
      await driver.powerOff(b.uuid);
    } finally {
      for (const g of await driver.guests()) await driver.powerOff(g.uuid).catch(() => {});
      await driver.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
