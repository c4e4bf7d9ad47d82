import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { startServer, waitFor, waitForStatus, type TestServer } from './helpers/harness.ts';
import { qemuHarness, qemuImagesDir } from './helpers/drivers.ts';

/**
 * The web console's bridges in front of a real QEMU guest (booted from the library's live cdrom): the serial bridge
 * types the password and shows the guest's shell, the VNC bridge passes VNC authentication with QEMU's own display.
 */
const h = qemuHarness();
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LIB_CDROM = '7fe7bef4-e018-4d70-9bfe-5ae163631ea8';

function connect(url: string, cookie: string): Promise<{ ws: WebSocket; got: () => Buffer }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { cookie } });
    let buf = Buffer.alloc(0);
    ws.on('message', (d: Buffer) => (buf = Buffer.concat([buf, d])));
    ws.on('open', () => resolve({ ws, got: () => buf }));
    ws.on('unexpected-response', (_q, res) => reject(new Error(`refused: ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

describe('web console bridges to a QEMU guest', { skip: h.skip ?? false }, () => {
  let t: TestServer;
  let libDir: string;
  let uuid: string;
  let cookie: string;

  before(async () => {
    libDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-lib-'));
    fs.copyFileSync(path.join(REPO, 'library', 'opensigma-tiny-guest.json'), path.join(libDir, 'opensigma-tiny-guest.json'));
    fs.symlinkSync(qemuImagesDir()!, path.join(libDir, 'images'));
    t = await startServer({ OPENSIGMA_DRIVER: 'qemu', OPENSIGMA_LIBRARY_DIR: libDir });
    const created = await t.call('POST', '/servers/', {
      name: 'qemu-web',
      cpu: 1000,
      mem: 256 * 2 ** 20,
      vnc_password: 'qemuweb1',
      drives: [{ device: 'ide', dev_channel: '0:0', boot_order: 1, drive: LIB_CDROM }],
      nics: [{ ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' }],
    });
    assert.equal(created.status, 201, created.text);
    uuid = created.body.objects[0].uuid;
    assert.equal((await t.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    await waitForStatus(t, uuid, 'running', 60_000);
    const body = JSON.stringify({ username: 'admin@example.com', password: 'admin-password' });
    const login = await fetch(`${t.api}/accounts/action/?do=login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    cookie = login.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
  });

  after(async () => {
    if (uuid) {
      await t.call('POST', `/servers/${uuid}/action/?do=stop`);
      await waitForStatus(t, uuid, 'stopped', 30_000).catch(() => {});
    }
    await t.close();
    fs.rmSync(libDir, { recursive: true, force: true });
  });

  test("the serial bridge reaches the guest's shell on ttyS0", async () => {
    const c = await connect(`${t.url.replace(/^http/, 'ws')}/websocket/servers/${uuid}/serial`, cookie);
    let closed = '';
    c.ws.on('close', (code, reason) => (closed = ` (the bridge closed: ${code} ${reason.toString()})`));
    // The guest may still be booting: what it already wrote comes first, then the prompt; Enter asks for a new one.
    const press = setInterval(() => c.ws.readyState === c.ws.OPEN && c.ws.send('\r'), 2000);
    try {
      await waitFor(async () => /# $/m.test(c.got().toString('latin1')) || closed, h.bootTimeoutMs, 'the shell prompt').catch((e: Error) => {
        throw new Error(`${e.message}${closed}; the page was shown: ${JSON.stringify(c.got().toString('latin1').slice(-600))}`);
      });
      assert.equal(closed, '', `the bridge stayed open; the page was shown: ${JSON.stringify(c.got().toString('latin1').slice(-600))}`);
    } finally {
      clearInterval(press);
    }
    c.ws.send('echo bridged-$((6*7))\r');
    await waitFor(async () => c.got().toString('latin1').includes('bridged-42'), 20_000, 'the answer from the guest');
    c.ws.close();
  });

  test("the VNC bridge authenticates to QEMU's display and hands noVNC a session without a password", async () => {
    const v = await connect(`${t.url.replace(/^http/, 'ws')}/websocket/servers/${uuid}/vnc`, cookie);
    await waitFor(async () => v.got().length >= 12, 10_000, 'the version');
    v.ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
    await waitFor(async () => v.got().length >= 14, 10_000, 'the security types');
    assert.deepEqual([...v.got().subarray(12, 14)], [1, 1]);
    v.ws.send(Buffer.from([1]));
    await waitFor(async () => v.got().length >= 18, 10_000, 'the security result');
    assert.equal(v.got().readUInt32BE(14), 0);
    v.ws.send(Buffer.from([1]));
    await waitFor(async () => v.got().length >= 42, 10_000, 'ServerInit');
    const init = v.got().subarray(18);
    assert.ok(init.readUInt16BE(0) >= 640 && init.readUInt16BE(2) >= 400, `a VGA screen (${init.readUInt16BE(0)}x${init.readUInt16BE(2)})`);
    v.ws.close();
  });
});
