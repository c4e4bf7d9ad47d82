import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { vncAuthAnswer } from './helpers/vnc-auth.ts';
import { DriverError, type HypervisorDriver } from '../src/hypervisor/driver.ts';
import { drivers, recordEvents, readUntil, PROMPT, tempDataDir } from './helpers/drivers.ts';
import { SocketReader } from './helpers/socket-reader.ts';

/** RFB 3.8 handshake with VNC authentication (RFC 6143); resolves with the SecurityResult (0 = OK), or -1 if refused. */
async function vncAuth(port: number, password: string): Promise<number> {
  let rfb: SocketReader;
  try {
    rfb = await SocketReader.connect(`tcp://127.0.0.1:${port}`);
  } catch {
    return -1;
  }
  try {
    if ((await rfb.read(12)).toString('latin1') !== 'RFB 003.008\n') return -1;
    rfb.write('RFB 003.008\n');
    const n = (await rfb.read(1))[0]!;
    if (n === 0) return -1;
    const types = [...(await rfb.read(n))];
    if (!types.includes(2)) return -1;
    rfb.write(Buffer.from([2]));
    const challenge = await rfb.read(16);
    rfb.write(vncAuthAnswer(password, challenge));
    return (await rfb.read(4)).readUInt32BE(0);
  } catch {
    return -1;
  } finally {
    rfb.close();
  }
}

/**
 * One suite every hypervisor driver must pass. Real (qemu) guests run one at a time at 128 MiB so that the suite
 * fits a 2-core CI machine.
 */
for (const h of drivers()) {
  describe(`driver conformance: ${h.name}`, { skip: h.skip ?? false }, () => {
    let dataDir: string;
    let driver: HypervisorDriver;
    let rec: ReturnType<typeof recordEvents>;
    const started: string[] = [];

    before(() => {
      dataDir = tempDataDir(`conf-${h.name}`);
      driver = h.create(dataDir);
      rec = recordEvents(driver);
    });

    after(async () => {
      // Whatever a failed test left running is stopped, so no guest outlives the suite.
      for (const g of await driver.guests()) if (started.includes(g.uuid)) await driver.powerOff(g.uuid).catch(() => {});
      await driver.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });

    test('capacity and accel are reported', () => {
      const c = driver.capacity();
      assert.ok(c.cpu > 0 && c.mem > 0, JSON.stringify(c));
      assert.equal(typeof driver.accel, 'string');
      assert.equal(driver.kind, h.name);
    });

    test('start -> running -> stats -> console prompt -> ACPI power button -> powered_off -> gone', async () => {
      const spec = h.spec(dataDir);
      started.push(spec.uuid);
      const t0 = Date.now();
      await driver.start(spec);
      const list = await driver.guests();
      const g = list.find((x) => x.uuid === spec.uuid);
      assert.ok(g, 'guest listed after start');
      assert.equal(g.state, 'running');
      assert.ok(g.activeSince instanceof Date && Math.abs(g.activeSince.getTime() - Date.now()) < 120_000);

      const stats = await driver.stats(spec.uuid);
      assert.ok(stats, 'stats of a running guest');
      for (const d of spec.drives) assert.equal(typeof stats.drives[d.uuid]?.bytes_read, 'number', `drive ${d.uuid} counters`);
      for (const n of spec.nics) assert.equal(typeof stats.nics[n.mac]?.bytes_recv, 'number', `nic ${n.mac} counters`);

      const con = await driver.attachSerial(spec.uuid);
      con.on('error', () => {}); // closing our end may surface as an AbortError
      const text = await readUntil(con, PROMPT, h.bootTimeoutMs);
      const bootMs = Date.now() - t0;
      con.write('echo conformance-ok\n');
      await readUntil(con, /(^|\n)conformance-ok\n/, 20_000, false);
      con.destroy();
      assert.ok(text.length > 0);
      // What the guest already wrote, for a console client that asks to see it first (the web console).
      const written = (await driver.serialHistory!(spec.uuid, 4096)).toString('latin1');
      assert.match(written, /conformance-ok/);
      assert.ok(written.length <= 4096);
      if (h.name === 'qemu') {
        const after = await driver.stats(spec.uuid);
        assert.ok(after!.drives[spec.drives[0]!.uuid]!.bytes_read > 0, 'the boot disk was read');
        assert.ok(after!.nics[spec.nics[0]!.mac]!.packets_sent > 0, 'the guest sent DHCP packets');
        assert.ok(after!.nics[spec.nics[0]!.mac]!.packets_recv > 0, 'the guest got a DHCP answer');
      }

      const t1 = Date.now();
      // The control plane presses the button every second until the guest obeys; so does this test.
      const press = setInterval(() => void driver.pressPowerButton(spec.uuid).catch(() => {}), 1000);
      try {
        await driver.pressPowerButton(spec.uuid);
        const e = await rec.wait(spec.uuid, 30_000);
        assert.equal(e.type, 'powered_off');
      } finally {
        clearInterval(press);
      }
      const offMs = Date.now() - t1;
      assert.ok(!(await driver.guests()).some((x) => x.uuid === spec.uuid), 'guest gone after power off');
      assert.equal(await driver.stats(spec.uuid), null);
      assert.deepEqual(h.leftovers(dataDir, spec.uuid), []);
      console.log(`# ${h.name}: boot to prompt ${bootMs} ms, power button to powered_off ${offMs} ms`);
    });

    test('powerOff is a hard stop and emits no event', async () => {
      const spec = h.spec(dataDir);
      started.push(spec.uuid);
      await driver.start(spec);
      const t0 = Date.now();
      await driver.powerOff(spec.uuid);
      const ms = Date.now() - t0;
      assert.ok(!(await driver.guests()).some((x) => x.uuid === spec.uuid));
      assert.deepEqual(h.leftovers(dataDir, spec.uuid), []);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!rec.events.some((e) => e.uuid === spec.uuid), 'no event for a requested stop');
      await assert.rejects(driver.powerOff(spec.uuid), (e: unknown) => e instanceof DriverError && e.code === 'not_found');
      console.log(`# ${h.name}: powerOff ${ms} ms`);
    });

    test('a start that fails rejects and leaves nothing running', async () => {
      const spec = h.failingSpec(dataDir);
      started.push(spec.uuid);
      await assert.rejects(driver.start(spec), (e: unknown) => e instanceof DriverError && e.message.length > 0);
      assert.ok(!(await driver.guests()).some((x) => x.uuid === spec.uuid));
      assert.deepEqual(h.leftovers(dataDir, spec.uuid), []);
    });

    test('starting a running guest twice is refused', async () => {
      const spec = h.spec(dataDir);
      started.push(spec.uuid);
      await driver.start(spec);
      await assert.rejects(driver.start(spec), DriverError);
      await driver.powerOff(spec.uuid);
    });

    test('openVnc serves RFB with VNC authentication by the password; closeVnc ends access', async () => {
      const spec = h.spec(dataDir, { vnc_password: 'vncpass1' });
      started.push(spec.uuid);
      await driver.start(spec);
      try {
        const { port } = await driver.openVnc(spec.uuid, 'vncpass1');
        assert.ok(port > 0);
        assert.equal(await vncAuth(port, 'vncpass1'), 0, 'the right password is accepted');
        assert.notEqual(await vncAuth(port, 'wrongpw1'), 0, 'a wrong password is refused');
        await driver.closeVnc(spec.uuid);
        assert.notEqual(await vncAuth(port, 'vncpass1'), 0, 'no access after closeVnc');
      } finally {
        await driver.powerOff(spec.uuid);
      }
    });

    test('reset keeps the guest running', async () => {
      const spec = h.spec(dataDir);
      started.push(spec.uuid);
      await driver.start(spec);
      await driver.reset(spec.uuid);
      await new Promise((r) => setTimeout(r, 500));
      assert.ok((await driver.guests()).some((x) => x.uuid === spec.uuid && x.state === 'running'));
      assert.ok(!rec.events.some((e) => e.uuid === spec.uuid));
      await driver.powerOff(spec.uuid);
    });

    test('a crash emits crashed within seconds and the guest is gone', async () => {
      const spec = h.spec(dataDir);
      started.push(spec.uuid);
      await driver.start(spec);
      const t0 = Date.now();
      await h.crash(driver, spec.uuid);
      const e = await rec.wait(spec.uuid, 10_000);
      assert.equal(e.type, 'crashed');
      assert.ok(Date.now() - t0 < 10_000);
      assert.ok(!(await driver.guests()).some((x) => x.uuid === spec.uuid));
      assert.deepEqual(h.leftovers(dataDir, spec.uuid), []);
    });

    test('a new driver instance on the same data dir finds running guests', async () => {
      const spec = h.spec(dataDir);
      started.push(spec.uuid);
      await driver.start(spec);
      await driver.close();
      const second = h.create(dataDir);
      const rec2 = recordEvents(second);
      try {
        const g = (await second.guests()).find((x) => x.uuid === spec.uuid);
        assert.ok(g, 'guest found again after a restart of the driver');
        assert.equal(g.state, 'running');
        assert.ok(await second.stats(spec.uuid));
        // The adopted guest is fully manageable: a crash is noticed, and cleaned up.
        await h.crash(second, spec.uuid);
        assert.equal((await rec2.wait(spec.uuid, 10_000)).type, 'crashed');
        assert.ok(!(await second.guests()).some((x) => x.uuid === spec.uuid));
        assert.deepEqual(h.leftovers(dataDir, spec.uuid), []);
      } finally {
        await second.close();
        driver = h.create(dataDir);
        rec = recordEvents(driver);
      }
    });
  });
}
