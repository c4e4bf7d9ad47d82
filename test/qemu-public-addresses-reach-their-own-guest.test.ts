import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import { DriverError, type GuestSpec, type HypervisorDriver } from '../src/hypervisor/driver.ts';
import { loopbackAddress, qemuHarness, readUntil, PROMPT, tempDataDir } from './helpers/drivers.ts';

/**
 * Two compute hosts on one machine (two drivers, two data dirs), a guest on each: each guest's public address — a
 * loopback address QEMU forwards into the guest — reaches that guest's port 80 and no other; the guest holds its
 * private address. An address already forwarded on this machine cannot be given to a second guest: its start fails
 * with QEMU's reason and leaves nothing behind. Tiny guests at 128 MiB.
 */
const h = qemuHarness();

describe('public addresses are forwarded to their own guest', { skip: h.skip ?? false }, () => {
  const dirs: string[] = [];
  const drivers: HypervisorDriver[] = [];
  const guests: Array<{ driver: HypervisorDriver; spec: GuestSpec; con: Duplex }> = [];
  const nic = (ip: string, i: number): GuestSpec['nics'][number] => ({
    mac: `22:78:00:00:00:0${i}`,
    model: 'virtio',
    boot_order: null,
    kind: 'public',
    ip,
    vlan: null,
  });

  before(async () => {
    for (let i = 0; i < 2; i++) {
      dirs.push(tempDataDir(`qemu-fwd-${i}`));
      drivers.push(h.create(dirs[i]!));
    }
    for (let i = 0; i < 2; i++) {
      const spec = h.spec(dirs[i]!, { name: `host${i}-guest`, nics: [nic(loopbackAddress(3, 10 + i), i + 1)] });
      await drivers[i]!.start(spec);
      const con = await drivers[i]!.attachSerial(spec.uuid);
      con.on('error', () => {});
      guests.push({ driver: drivers[i]!, spec, con });
    }
    for (const g of guests) await readUntil(g.con, PROMPT, h.bootTimeoutMs);
  });

  after(async () => {
    for (const g of guests) {
      g.con.destroy();
      await g.driver.powerOff(g.spec.uuid).catch(() => {});
    }
    for (const d of drivers) await d.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('each address answers with its own guest; the guest holds 10.0.2.15', async () => {
    for (const [i, g] of guests.entries()) {
      g.con.write(`mkdir -p /tmp/w && echo page-of-guest-${i} > /tmp/w/index.html && httpd -p 80 -h /tmp/w && ip -4 addr show eth0\n`);
      const out = await readUntil(g.con, /inet [0-9.]+\/\d+/, 30_000, false);
      assert.match(out, /inet 10\.0\.2\.15\/24/);
    }
    for (const [i, g] of guests.entries()) {
      const res = await fetch(`http://${g.spec.nics[0]!.ip}/index.html`, { signal: AbortSignal.timeout(15_000) });
      assert.equal((await res.text()).trim(), `page-of-guest-${i}`);
    }
  });

  test('an address another guest on this machine already has is refused, and nothing is left behind', async () => {
    const spec = h.spec(dirs[1]!, { nics: [nic(guests[0]!.spec.nics[0]!.ip!, 9)] });
    await assert.rejects(drivers[1]!.start(spec), (e: unknown) => e instanceof DriverError && /host forwarding/i.test(e.message));
    assert.deepEqual(h.leftovers(dirs[1]!, spec.uuid), []);
    // The guest that has the address still answers on it.
    const res = await fetch(`http://${guests[0]!.spec.nics[0]!.ip}/index.html`, { signal: AbortSignal.timeout(15_000) });
    assert.equal((await res.text()).trim(), 'page-of-guest-0');
  });
});
