import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { vncAuthAnswer } from './helpers/vnc-auth.ts';
import { databases, minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';
import { SocketReader, isListening } from './helpers/socket-reader.ts';

interface Session {
  rfb: SocketReader;
  width: number;
  height: number;
  bpp: number;
  name: string;
}

/** Handshake + authentication as an RFB client of `version` ('3.8', '3.7' or '3.3'). Returns the result code. */
async function authenticate(url: string, password: string, version: '3.3' | '3.7' | '3.8'): Promise<{ rfb: SocketReader; result: number; reason?: string }> {
  const rfb = await SocketReader.connect(url);
  assert.equal((await rfb.read(12)).toString('latin1'), 'RFB 003.008\n');
  rfb.write(`RFB 003.00${version.slice(2)}\n`);
  if (version === '3.3') {
    assert.equal((await rfb.read(4)).readUInt32BE(0), 2, 'the server decides: VNC authentication');
  } else {
    const n = (await rfb.read(1))[0]!;
    const types = [...(await rfb.read(n))];
    assert.ok(types.includes(2), `VNC authentication offered (got ${types})`);
    rfb.write(Buffer.from([2]));
  }
  const challenge = await rfb.read(16);
  rfb.write(vncAuthAnswer(password, challenge));
  const result = (await rfb.read(4)).readUInt32BE(0);
  if (result !== 0 && version === '3.8') {
    const len = (await rfb.read(4)).readUInt32BE(0);
    return { rfb, result, reason: (await rfb.read(len)).toString('utf8') };
  }
  return { rfb, result };
}

async function init(rfb: SocketReader): Promise<Session> {
  rfb.write(Buffer.from([1])); // ClientInit, shared
  const head = await rfb.read(24);
  const name = (await rfb.read(head.readUInt32BE(20))).toString('utf8');
  return { rfb, width: head.readUInt16BE(0), height: head.readUInt16BE(2), bpp: head[4]!, name };
}

/** Asks for the whole screen and returns its pixels as 32-bit values (the server's default format). */
async function frame(s: Session): Promise<Uint32Array> {
  const req = Buffer.alloc(10);
  req[0] = 3;
  req[1] = 0; // not incremental
  req.writeUInt16BE(s.width, 6);
  req.writeUInt16BE(s.height, 8);
  s.rfb.write(req);
  const head = await s.rfb.read(4);
  assert.equal(head[0], 0, 'FramebufferUpdate');
  assert.equal(head.readUInt16BE(2), 1);
  const rect = await s.rfb.read(12);
  assert.deepEqual([rect.readUInt16BE(0), rect.readUInt16BE(2), rect.readUInt16BE(4), rect.readUInt16BE(6)], [0, 0, s.width, s.height]);
  assert.equal(rect.readInt32BE(8), 0, 'Raw encoding');
  const bytes = await s.rfb.read(s.width * s.height * 4);
  const px = new Uint32Array(s.width * s.height);
  for (let i = 0; i < px.length; i++) px[i] = bytes.readUInt32LE(i * 4) & 0xffffff;
  return px;
}

for (const db of databases()) {
  describe(`server VNC [${db.name}]`, () => {
    let t: TestServer;
    let uuid: string;
    before(async () => {
      t = await startServer({}, db);
      const c = await t.call('POST', '/servers/', minimalServer('vnc-box', { vnc_password: 'secret99' }));
      uuid = c.body.objects[0].uuid;
    });
    after(async () => t.close());

    test('open_vnc on a stopped server is refused', async () => {
      const r = await t.call('POST', `/servers/${uuid}/action/?do=open_vnc`);
      assert.equal(r.status, 403);
      assert.equal(r.body[0].error_type, 'permission');
    });

    test('open_vnc serves RFB 3.8 with VNC authentication and a drawn framebuffer', async () => {
      await t.call('POST', `/servers/${uuid}/action/?do=start`);
      await waitForStatus(t, uuid, 'running');
      const r = await t.call('POST', `/servers/${uuid}/action/?do=open_vnc`);
      assert.equal(r.status, 202);
      assert.equal(r.body.action, 'open_vnc');
      assert.equal(r.body.result, 'success');
      assert.match(r.body.vnc_url, /^vnc:\/\/127\.0\.0\.1:\d+$/);

      const { rfb, result } = await authenticate(r.body.vnc_url, 'secret99', '3.8');
      assert.equal(result, 0);
      const s = await init(rfb);
      assert.equal(s.name, 'vnc-box');
      assert.equal(s.bpp, 32);
      assert.ok(s.width > 0 && s.height > 0);
      const px = frame(s);
      const pixels = await px;
      const at = (x: number, y: number) => pixels[y * s.width + x]!;
      // A frame around the screen, a different background, and the name drawn in a third colour.
      assert.notEqual(at(0, 0), at(s.width >> 1, s.height - 20));
      assert.equal(at(0, 0), at(s.width - 1, s.height - 1));
      const colours = new Set(pixels);
      assert.ok(colours.size >= 3, `something is drawn (${colours.size} colours)`);
      rfb.close();
    });

    test('a wrong password gets SecurityResult failed with a reason, then the connection closes', async () => {
      const r = await t.call('POST', `/servers/${uuid}/action/?do=open_vnc`);
      const bad = await authenticate(r.body.vnc_url, 'wrongpw', '3.8');
      assert.equal(bad.result, 1);
      assert.match(bad.reason ?? '', /password|auth/i);
      await bad.rfb.readToEnd();
    });

    test('RFB 3.3 and 3.7 clients authenticate too', async () => {
      const r = await t.call('POST', `/servers/${uuid}/action/?do=open_vnc`);
      for (const v of ['3.3', '3.7'] as const) {
        const ok = await authenticate(r.body.vnc_url, 'secret99', v);
        assert.equal(ok.result, 0, `RFB ${v}`);
        const s = await init(ok.rfb);
        assert.equal(s.name, 'vnc-box');
        ok.rfb.close();
        const bad = await authenticate(r.body.vnc_url, 'nope', v);
        assert.equal(bad.result, 1, `RFB ${v} wrong password`);
        await bad.rfb.readToEnd();
      }
    });

    test('each open gives a new URL; close_vnc closes it', async () => {
      const a = (await t.call('POST', `/servers/${uuid}/action/?do=open_vnc`)).body.vnc_url;
      const b = (await t.call('POST', `/servers/${uuid}/action/?do=open_vnc`)).body.vnc_url;
      assert.notEqual(a, b);
      assert.equal(await isListening(b), true);
      const c = await t.call('POST', `/servers/${uuid}/action/?do=close_vnc`);
      assert.equal(c.status, 202);
      assert.deepEqual(c.body, { action: 'close_vnc', result: 'success', uuid });
      assert.equal(await isListening(b), false);
    });

    test('stopping the server closes its display', async () => {
      const url = (await t.call('POST', `/servers/${uuid}/action/?do=open_vnc`)).body.vnc_url;
      await t.call('POST', `/servers/${uuid}/action/?do=stop`);
      await waitForStatus(t, uuid, 'stopped');
      assert.equal(await isListening(url), false);
    });
  });
}
