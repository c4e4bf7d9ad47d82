import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { loopbackPools, qemuHarness, qemuImagesDir, readUntil, PROMPT } from './helpers/drivers.ts';

/**
 * A firewall policy decides which connections from the host reach a QEMU guest's public address, and an edit of the
 * policy takes effect on the running guest within 2 s, without a restart. The tiny guest serves HTTP with busybox.
 */
const h = qemuHarness();
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LIB_DISK = 'ba088a1e-17df-48e4-ae1a-fd243118c505';

/** Whether an HTTP GET of http://ADDR:PORT/ answers with the guest's page within a second. */
async function reaches(addr: string, port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://${addr}:${port}/index.html`, { signal: AbortSignal.timeout(1500) });
    return (await r.text()).includes('guest-page');
  } catch {
    return false;
  }
}

async function within(ms: number, what: string, ok: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  await waitFor(async () => ((await ok()) ? true : null), ms, what);
  return Date.now() - t0;
}

describe('firewall policies on a QEMU guest', { skip: h.skip ?? false }, () => {
  let t: TestServer;
  let libDir: string;
  let uuid: string;
  let policy: string;
  let addr: string;

  before(async () => {
    libDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-lib-'));
    fs.copyFileSync(path.join(REPO, 'library', 'opensigma-tiny-guest.json'), path.join(libDir, 'opensigma-tiny-guest.json'));
    fs.symlinkSync(qemuImagesDir()!, path.join(libDir, 'images'));
    t = await startServer({ OPENSIGMA_DRIVER: 'qemu', OPENSIGMA_LIBRARY_DIR: libDir, ...loopbackPools() });
    const cl = await t.call('POST', `/libdrives/${LIB_DISK}/action/?do=clone`, { name: 'fw disk' });
    assert.equal(cl.status, 202, JSON.stringify(cl.body));
    const drive = cl.body.objects[0].uuid as string;
    await waitFor(async () => (await t.call('GET', `/drives/${drive}/`)).body.status === 'unmounted', 60_000, 'the clone');
    // No rules yet: everything is accepted, and the default ports (22, 80, 443) are forwarded.
    policy = (await t.call('POST', '/fwpolicies/', { name: 'web', rules: [] })).body.objects[0].uuid;
    const created = await t.call('POST', '/servers/', {
      name: 'fw-guest',
      cpu: 1000,
      mem: 256 * 2 ** 20,
      vnc_password: 'fwpass12',
      drives: [{ device: 'virtio', dev_channel: '0:0', boot_order: 1, drive }],
      nics: [{ ip_v4_conf: { conf: 'dhcp' }, model: 'virtio', firewall_policy: policy }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    uuid = created.body.objects[0].uuid;
    assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    const running = await waitForStatus(t, uuid, 'running', 60_000);
    addr = running.runtime.nics[0].ip_v4.uuid;
    const oc = await t.call('POST', `/servers/${uuid}/action/?do=open_console`);
    const u = new URL(String(oc.body.console_url).replace(/^csconsole:/, 'tcp:'));
    const con = net.connect(Number(u.port), u.hostname);
    con.on('error', () => {});
    await readUntil(con, /Password:/, 20_000, false);
    con.write('fwpass12\r\n');
    await readUntil(con, PROMPT, h.bootTimeoutMs);
    con.write('mkdir -p /tmp/w && echo guest-page > /tmp/w/index.html && httpd -p 80 -h /tmp/w && httpd -p 8080 -h /tmp/w && echo served\n');
    await readUntil(con, /\nserved/, 20_000, false);
    con.destroy();
  });

  after(async () => {
    if (uuid) await t.call('POST', `/servers/${uuid}/action/?do=stop`);
    if (uuid) await waitForStatus(t, uuid, 'stopped', 30_000).catch(() => {});
    await t.close();
    fs.rmSync(libDir, { recursive: true, force: true });
  });

  test('an empty policy lets the default ports in; a port no rule opens is not forwarded', async () => {
    await within(15_000, 'port 80 to answer', () => reaches(addr, 80));
    assert.equal(await reaches(addr, 8080), false);
  });

  test('an edit that drops port 80 and accepts 8080 takes effect within 2 s, and its removal too', async () => {
    const rules = [
      { action: 'drop', direction: 'in', ip_proto: 'tcp', dst_port: '80' },
      { action: 'accept', direction: 'in', ip_proto: 'tcp', dst_port: '8080' },
    ];
    const edit = await t.call('PUT', `/fwpolicies/${policy}/`, { name: 'web', rules });
    assert.equal(edit.status, 200, JSON.stringify(edit.body));
    const closed = await within(2000, 'port 80 to be dropped', async () => !(await reaches(addr, 80)));
    const opened = await within(2000, 'port 8080 to be let in', () => reaches(addr, 8080));
    console.log(`# policy edit -> port 80 dropped in ${closed} ms, port 8080 open in ${opened} ms`);
    assert.equal((await t.call('PUT', `/fwpolicies/${policy}/`, { name: 'web', rules: [] })).status, 200);
    await within(2000, 'port 80 to answer again', () => reaches(addr, 80));
    await within(2000, 'port 8080 to close again', async () => !(await reaches(addr, 8080)));
  });

  test('detaching the policy from the running server restores the default ports', async () => {
    await t.call('PUT', `/fwpolicies/${policy}/`, { name: 'web', rules: [{ action: 'drop', direction: 'in', ip_proto: 'tcp', dst_port: '80' }] });
    await within(2000, 'port 80 to be dropped', async () => !(await reaches(addr, 80)));
    const s = (await t.call('GET', `/servers/${uuid}/`)).body;
    const put = await t.call('PUT', `/servers/${uuid}/`, { ...s, nics: s.nics.map((n: Record<string, unknown>) => ({ ...n, firewall_policy: null })) });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await within(2000, 'port 80 to answer without the policy', () => reaches(addr, 80));
  });
});
