import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, startServer, type TestServer } from './helpers/harness.ts';
import { SocketReader } from './helpers/socket-reader.ts';

const basic = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;

/** The status and the error array of the one answer a socket gets before the server closes it. */
async function answerThenClose(s: SocketReader, within: number): Promise<{ status: number; body: any; code: string | undefined }> {
  const head = await s.readUntil('\r\n\r\n', within);
  const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)![1]);
  const body = JSON.parse((await s.read(length, within)).toString('utf8'));
  await Promise.race([s.closed, new Promise((_, fail) => setTimeout(() => fail(new Error('the connection stayed open')), within))]);
  return { status: Number(head.split(' ')[1]), body, code: /\r\nx-opensigma-error-code: (\S+)/i.exec(head)?.[1] };
}

// Sockets only: no database is involved beyond the credentials, so SQLite alone.
describe('slow clients are cut off', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({
      OPENSIGMA_HEADERS_TIMEOUT_MS: '400',
      OPENSIGMA_REQUEST_TIMEOUT_MS: '600',
      OPENSIGMA_IDLE_TIMEOUT_MS: '1500',
      OPENSIGMA_KEEPALIVE_TIMEOUT_MS: '300',
    });
  });
  after(async () => t.close());

  test('headers sent slower than the headers timeout: 408 in the error array, connection closed', async () => {
    const s = await SocketReader.connect(t.url);
    s.sock.write('GET /api/2.0/servers/ HTTP/1.1\r\nhost: x\r\n');
    const a = await answerThenClose(s, 5000);
    assert.equal(a.status, 408);
    assert.equal(a.code, 'OS_ERR_REQUEST_TIMEOUT');
    assert.equal(a.body[0].error_type, 'validation');
  });

  test('a JSON body sent slower than the request timeout: 408 in the error array, connection closed, nothing written', async () => {
    const s = await SocketReader.connect(t.url);
    s.sock.write(
      `POST /api/2.0/tags/ HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{"objects": [`,
    );
    // Trickled, so the connection is never idle: only the body deadline can end it.
    const trickle = setInterval(() => s.sock.write(' '), 100);
    try {
      const a = await answerThenClose(s, 5000);
      assert.equal(a.status, 408);
      assert.ok(Array.isArray(a.body) && a.body.length === 1);
      assert.equal(a.code, 'OS_ERR_BODY_TIMEOUT');
    } finally {
      clearInterval(trickle);
    }
    assert.deepEqual((await t.call('GET', '/tags/')).body.objects, []);
  });

  test('a kept-alive connection waiting for its next request is closed after the keep-alive timeout', async () => {
    const s = await SocketReader.connect(t.url);
    s.sock.write(`GET /api/2.0/servers/ HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\n\r\n`);
    assert.match(await s.readUntil('\r\n\r\n'), /^HTTP\/1\.1 200 /);
    await Promise.race([s.closed, new Promise((_, fail) => setTimeout(() => fail(new Error('kept open')), 5000))]);
  });

  test('a request the API takes longer than the idle timeout to answer still gets its answer', async () => {
    // The whole request is in; only the API is slow (as with a batch of 100 RSA keys on a busy host).
    await t.call('POST', '/opensigma/faults/', { id: 'slow', path: '/api/2.0/tags/', latency_ms: 3000 });
    try {
      const s = await SocketReader.connect(t.url);
      s.sock.write(`GET /api/2.0/tags/ HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\n\r\n`);
      assert.match(await s.readUntil('\r\n\r\n', 8000), /^HTTP\/1\.1 200 /);
      s.close();
    } finally {
      await t.call('DELETE', '/opensigma/faults/');
    }
  });

  test('a connection on which nothing moves mid-upload is closed after the idle timeout', async () => {
    const s = await SocketReader.connect(t.url);
    s.sock.write(
      `PUT /api/2.0/drives/upload/ HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\ncontent-type: application/octet-stream\r\ncontent-length: 10000000\r\n\r\n`,
    );
    s.sock.write(Buffer.alloc(1000));
    await Promise.race([s.closed, new Promise((_, fail) => setTimeout(() => fail(new Error('a stalled upload kept its connection')), 8000))]);
  });
});

describe('anonymous connections are capped', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ OPENSIGMA_MAX_ANONYMOUS_CONNECTIONS: '5' });
  });
  after(async () => t.close());

  test('beyond the cap the oldest anonymous connection is closed; authenticated ones stay and new clients get in', async () => {
    const known = await SocketReader.connect(t.url);
    known.sock.write(`GET /api/2.0/servers/ HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\n\r\n`);
    assert.match(await known.readUntil('\r\n\r\n'), /^HTTP\/1\.1 200 /);

    const idle: SocketReader[] = [];
    for (let i = 0; i < 12; i++) idle.push(await SocketReader.connect(t.url));
    // The first seven are closed by the server, the newest five stay.
    await Promise.all(idle.slice(0, 7).map((s) => Promise.race([s.closed, new Promise((_, fail) => setTimeout(() => fail(new Error('not closed')), 5000))])));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(idle.filter((s) => !s.sock.destroyed).length, 5);

    known.sock.write(`GET /api/2.0/servers/ HTTP/1.1\r\nhost: x\r\nauthorization: ${basic}\r\n\r\n`);
    assert.match(await known.readUntil('HTTP/1.1 200', 5000), /HTTP\/1\.1 200/);
    assert.equal((await t.call('GET', '/servers/')).status, 200, 'a new client still gets in');
    for (const s of idle) s.sock.destroy();
    known.sock.destroy();
  });
});
