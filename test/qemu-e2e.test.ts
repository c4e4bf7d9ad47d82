import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { loopbackPools, qemuHarness, qemuImagesDir, readUntil, PROMPT } from './helpers/drivers.ts';
import { SocketReader } from './helpers/socket-reader.ts';
import { vncAuthAnswer } from './helpers/vnc-auth.ts';

/**
 * What a new user does with a real VM, through the API only: clone the library disk, create a server with it, a
 * dhcp NIC and context, start it, open the console, see the guest's shell, read the server context from inside the
 * guest, reach a port of the guest at the address the API shows, and shut it down by ACPI.
 */
const h = qemuHarness();
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LIB_DISK = 'ba088a1e-17df-48e4-ae1a-fd243118c505';

describe('qemu end to end through the API', { skip: h.skip ?? false }, () => {
  let t: TestServer;
  let libDir: string;

  before(async () => {
    // The shipped library description, with its images from the test cache.
    libDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-lib-'));
    fs.copyFileSync(path.join(REPO, 'library', 'opensigma-tiny-guest.json'), path.join(libDir, 'opensigma-tiny-guest.json'));
    fs.symlinkSync(qemuImagesDir()!, path.join(libDir, 'images'));
    t = await startServer({ OPENSIGMA_DRIVER: 'qemu', OPENSIGMA_LIBRARY_DIR: libDir, OPENSIGMA_ACPI_TIMEOUT_S: '60', ...loopbackPools() });
  });

  after(async () => {
    const list = await t.call('GET', '/servers/detail/');
    for (const s of list.body?.objects ?? []) if (s.status !== 'stopped') await t.call('POST', `/servers/${s.uuid}/action/?do=stop`);
    for (const s of list.body?.objects ?? []) await waitForStatus(t, s.uuid, 'stopped', 20_000).catch(() => {});
    await t.close();
    fs.rmSync(libDir, { recursive: true, force: true });
  });

  test('clone the library disk, boot it, log in on the console, read the context, ACPI shutdown', async () => {
    const lib = await t.call('GET', `/libdrives/${LIB_DISK}/`);
    assert.equal(lib.status, 200, JSON.stringify(lib.body));
    const cl = await t.call('POST', `/libdrives/${LIB_DISK}/action/?do=clone`, { name: 'my tiny disk' });
    assert.equal(cl.status, 202, JSON.stringify(cl.body));
    const drive = cl.body.objects[0].uuid as string;
    await waitFor(async () => (await t.call('GET', `/drives/${drive}/`)).body.status === 'unmounted', 60_000, 'the clone');

    const created = await t.call('POST', '/servers/', {
      name: 'tiny-e2e',
      cpu: 1000,
      mem: 256 * 2 ** 20, // the API's minimum
      vnc_password: 'e2epass1',
      context: true,
      meta: { purpose: 'end-to-end' },
      drives: [{ device: 'virtio', dev_channel: '0:0', boot_order: 1, drive }],
      nics: [{ ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const uuid = created.body.objects[0].uuid as string;

    const t0 = Date.now();
    const st = await t.call('POST', `/servers/${uuid}/action/?do=start`);
    assert.equal(st.status, 202, JSON.stringify(st.body));
    const running = await waitForStatus(t, uuid, 'running', 60_000);
    const ip = running.runtime.nics[0].ip_v4?.uuid as string;
    assert.ok(ip, `a leased address: ${JSON.stringify(running.runtime)}`);

    const oc = await t.call('POST', `/servers/${uuid}/action/?do=open_console`);
    assert.equal(oc.status, 202, JSON.stringify(oc.body));
    const u = new URL(String(oc.body.console_url).replace(/^csconsole:/, 'tcp:'));
    const con = net.connect(Number(u.port), u.hostname);
    con.on('error', () => {});
    await readUntil(con, /Password:/, 20_000, false);
    con.write('e2epass1\r\n');
    await readUntil(con, PROMPT, h.bootTimeoutMs);
    const promptMs = Date.now() - t0;

    con.write('context name; context meta/purpose; ip -4 addr show eth0\n');
    const out = await readUntil(con, /inet [0-9.]+\/\d+/, 30_000, false);
    assert.match(out, /\ntiny-e2e\n/);
    assert.match(out, /\nend-to-end\n/);
    // The guest holds the private address behind QEMU's translation; the API's address is the host side of it.
    assert.match(out, /inet 10\.0\.2\.15\/24/, 'the guest got its private address by DHCP');
    con.write('mkdir -p /tmp/www && echo hello-from-tiny-e2e > /tmp/www/index.html && httpd -p 80 -h /tmp/www && echo HTTPD-UP\n');
    await readUntil(con, /\nHTTPD-UP\n/, 20_000, false);
    const page = await fetch(`http://${ip}/index.html`, { signal: AbortSignal.timeout(15_000) });
    assert.equal((await page.text()).trim(), 'hello-from-tiny-e2e', `port 80 of ${ip} is the guest's`);

    // A rename of the running server is what the guest reads next.
    const renamed = await t.call('PUT', `/servers/${uuid}/`, { ...running, name: 'tiny-renamed' });
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    con.write('context name\n');
    await readUntil(con, /\ntiny-renamed\n/, 20_000, false);
    con.destroy();

    // VNC reaches QEMU's display through the compute node's gateway, which logs in with the server's password.
    const ov = await t.call('POST', `/servers/${uuid}/action/?do=open_vnc`);
    assert.equal(ov.status, 202, JSON.stringify(ov.body));
    const rfb = await SocketReader.connect(String(ov.body.vnc_url).replace(/^vnc:/, 'tcp:'));
    assert.equal((await rfb.read(12)).toString('latin1'), 'RFB 003.008\n');
    rfb.write('RFB 003.008\n');
    await rfb.read((await rfb.read(1))[0]!);
    rfb.write(Buffer.from([2]));
    rfb.write(vncAuthAnswer('e2epass1', await rfb.read(16)));
    assert.equal((await rfb.read(4, 20_000)).readUInt32BE(0), 0, 'VNC authentication through the gateway');
    rfb.write(Buffer.from([1])); // ClientInit: QEMU answers with its ServerInit
    const init = await rfb.read(24, 20_000);
    assert.ok(init.readUInt16BE(0) > 0 && init.readUInt16BE(2) > 0, 'a framebuffer with a size');
    rfb.close();

    const t1 = Date.now();
    const sd = await t.call('POST', `/servers/${uuid}/action/?do=shutdown`);
    assert.equal(sd.status, 202, JSON.stringify(sd.body));
    await waitForStatus(t, uuid, 'stopped', 60_000);
    const stopMs = Date.now() - t1;
    assert.equal(fs.existsSync(path.join(t.dataDir, 'qemu', uuid)), false, 'no run dir left');
    console.log(`# qemu e2e: POST start -> console prompt ${promptMs} ms; shutdown -> stopped ${stopMs} ms`);
  });
});
