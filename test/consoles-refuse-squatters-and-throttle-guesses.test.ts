import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { minimalServer, startServer, waitForStatus, type TestServer } from './helpers/harness.ts';
import { SocketReader } from './helpers/socket-reader.ts';
import { vncAuthAnswer } from './helpers/vnc-auth.ts';
import { GuessThrottle, CONSOLE_THROTTLE } from '../src/domain/guess-throttle.ts';

const tcp = (url: string) => url.replace(/^(csconsole|vnc):/, 'tcp:');

async function shell(url: string, password: string, from?: string): Promise<{ c: SocketReader; out: string }> {
  const c = await SocketReader.connect(tcp(url), from);
  await c.readUntil('Password:');
  c.write(`${password}\r\n`);
  const out = await c.readUntil(password === 'sesame12' ? '# ' : '\n', 20000).catch(async () => c.readToEnd(20000));
  return { c, out };
}

/** One VNC authentication; the result code (0 = in), and the time the answer took. */
async function vncTry(url: string, password: string, from?: string): Promise<{ result: number; ms: number }> {
  const rfb = await SocketReader.connect(tcp(url), from);
  await rfb.read(12);
  rfb.write('RFB 003.008\n');
  const n = (await rfb.read(1))[0]!;
  await rfb.read(n);
  rfb.write(Buffer.from([2]));
  const challenge = await rfb.read(16);
  const t0 = Date.now();
  rfb.write(vncAuthAnswer(password, challenge));
  const result = (await rfb.read(4, 60000)).readUInt32BE(0);
  const ms = Date.now() - t0;
  rfb.close();
  return { result, ms };
}

describe('consoles: the slot, timeouts and guessing', () => {
  let t: TestServer;
  let uuid: string;
  let consoleUrl: string;
  let vncUrl: string;
  before(async () => {
    t = await startServer({});
    const c = await t.call('POST', '/servers/', minimalServer('squat', { vnc_password: 'sesame12' }));
    uuid = c.body.objects[0].uuid;
    await t.call('POST', `/servers/${uuid}/action/?do=start`);
    await waitForStatus(t, uuid, 'running');
    consoleUrl = (await t.call('POST', `/servers/${uuid}/action/?do=open_console`)).body.console_url;
    vncUrl = (await t.call('POST', `/servers/${uuid}/action/?do=open_vnc`)).body.vnc_url;
  });
  after(async () => t.close());

  test('a client that connects and never types does not hold the console: the owner gets in', async () => {
    const squatter = await SocketReader.connect(tcp(consoleUrl));
    await squatter.readUntil('Password:');
    const { c, out } = await shell(consoleUrl, 'sesame12');
    assert.match(out, /Connected to the serial console/);
    assert.doesNotMatch(out, /another client/i);
    c.close();
    squatter.close();
  });

  test('a connection that gives no password within a few seconds is closed', async () => {
    const idle = await SocketReader.connect(tcp(consoleUrl));
    await idle.readUntil('Password:');
    const t0 = Date.now();
    assert.match(await idle.readToEnd(15000), /no password given in time/i);
    assert.ok(Date.now() - t0 < 10000, `closed after ${Date.now() - t0} ms`);
  });

  test('the console is free the moment its holder disconnects: 20 immediate reconnects all get in', async () => {
    for (let i = 0; i < 20; i++) {
      const { c, out } = await shell(consoleUrl, 'sesame12');
      assert.match(out, /Connected to the serial console/, `reconnect ${i + 1}: ${out}`);
      c.close();
    }
  });

  test('wrong console passwords from one source are slowed down, then refused; another source is not', async () => {
    const from = '127.0.0.2';
    const started = Date.now();
    let answered = 0;
    // Within 6 s an attacker gets the few free guesses and then one every growing delay (1 s, 2 s, 4 s…).
    while (Date.now() - started < 6000) {
      const c = await SocketReader.connect(tcp(consoleUrl), from);
      await c.readUntil('Password:');
      c.write('wrong-guess\r\n');
      const end = await c.readToEnd(10000).catch(() => '');
      if (/wrong password/i.test(end)) answered++;
    }
    assert.ok(answered <= CONSOLE_THROTTLE.free + 3, `${answered} guesses answered in 6 s`);
    assert.ok(answered >= CONSOLE_THROTTLE.free, `the first ${CONSOLE_THROTTLE.free} are free (got ${answered})`);
    // The owner, elsewhere, is not slowed down by it.
    const t0 = Date.now();
    const { c, out } = await shell(consoleUrl, 'sesame12', '127.0.0.3');
    assert.match(out, /Connected/);
    assert.ok(Date.now() - t0 < 2000, `the owner waited ${Date.now() - t0} ms`);
    c.close();
  });

  test('VNC goes through the gateway: the right password gets the display, wrong ones are slowed down per source', async () => {
    assert.equal((await vncTry(vncUrl, 'sesame12')).result, 0);
    const from = '127.0.0.4';
    const times: number[] = [];
    for (let i = 0; i < CONSOLE_THROTTLE.free + 2; i++) {
      const r = await vncTry(vncUrl, 'badbadba', from);
      assert.equal(r.result, 1);
      times.push(r.ms);
    }
    // free guesses are answered at once; the ones after wait at least the base delay
    assert.ok(
      times.slice(0, CONSOLE_THROTTLE.free).every((ms) => ms < 800),
      `free guesses took ${times}`,
    );
    assert.ok(
      times.slice(CONSOLE_THROTTLE.free).every((ms) => ms >= CONSOLE_THROTTLE.baseDelayMs - 50),
      `later guesses took ${times}`,
    );
  });
});

test('the guess throttle: free guesses, doubling delays, a lock-out, and a fresh start after a right password', () => {
  const th = new GuessThrottle({ free: 2, baseDelayMs: 100, maxDelayMs: 1000, lockAfter: 5, lockMs: 10_000, forgetMs: 60_000 });
  let now = 0;
  const waits: number[] = [];
  for (let i = 0; i < 5; i++) {
    const a = th.admit('x', now);
    assert.ok(a.ok);
    waits.push(a.waitMs);
    now += a.waitMs;
    th.fail('x', now);
  }
  assert.deepEqual(waits, [0, 0, 100, 200, 400]);
  const locked = th.admit('x', now);
  assert.equal(locked.ok, false);
  assert.deepEqual(th.admit('y', now), { ok: true, waitMs: 0 }, 'another source is not slowed');
  now += 10_001;
  th.succeed('x');
  const fresh = th.admit('x', now);
  assert.ok(fresh.ok && fresh.waitMs === 0);
});

test('the guess throttle: attempts sent at once are spaced as if each had failed, and no more than the lock-out limit are admitted', () => {
  const th = new GuessThrottle({ free: 2, baseDelayMs: 100, maxDelayMs: 1000, lockAfter: 5, lockMs: 10_000, forgetMs: 60_000 });
  const at = Array.from({ length: 8 }, () => th.admit('x', 0));
  assert.deepEqual(
    at.map((a) => (a.ok ? a.waitMs : 'refused')),
    [0, 0, 100, 300, 700, 'refused', 'refused', 'refused'],
  );
  for (const a of at) if (a.ok) th.fail('x', a.waitMs);
  assert.equal(th.admit('x', 800).ok, false, 'locked out after the fifth failure');
  // After the lock-out one more try is admitted, and its failure locks the source again.
  const after = th.admit('x', 10_800);
  assert.ok(after.ok);
  th.fail('x', 10_800 + after.waitMs);
  assert.equal(th.admit('x', 11_900).ok, false);
});
