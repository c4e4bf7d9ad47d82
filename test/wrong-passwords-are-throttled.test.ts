import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ADMIN, databases, startServer, type TestServer } from './helpers/harness.ts';

/** A GET of /servers/ with Basic credentials, from a chosen loopback address (a distinct source), on a new connection. */
function from(t: TestServer, source: string, email: string, password: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${t.api}/servers/`,
      { localAddress: source, agent: false, headers: { authorization: `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}` } },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function assertThrottled(r: { status: number; headers: http.IncomingHttpHeaders; body: any }, what: string) {
  assert.equal(r.status, 429, `${what}: ${JSON.stringify(r.body)}`);
  assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 300, what);
  assert.equal(r.body[0].error_type, 'ratelimit', what);
}

const BOB = { email: 'bob-throttle@example.com', password: 'bob-right-password' };

for (const db of databases()) {
  describe(`wrong passwords are throttled per source and per account [${db.name}]`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ OPENSIGMA_LOGIN_FAILURES_PER_SOURCE: '4', OPENSIGMA_LOGIN_FAILURES_PER_ACCOUNT: '6' }, db);
      await t.running.svc.store.users.create(BOB.email, BOB.password);
    });
    after(async () => t.close());

    test('a source over its budget gets 429, even with the right password; the account stays open to the places its owner uses', async () => {
      assert.equal((await from(t, '127.0.0.1', BOB.email, BOB.password)).status, 200, 'bob logs in from his usual place');
      for (let i = 0; i < 4; i++) assert.equal((await from(t, '127.0.0.2', BOB.email, `wrong${i}`)).status, 401);
      assertThrottled(await from(t, '127.0.0.2', BOB.email, 'wrong-again'), 'the strict per-source budget');
      assertThrottled(await from(t, '127.0.0.2', BOB.email, BOB.password), 'no oracle for the throttled source');
      assertThrottled(await from(t, '127.0.0.2', ADMIN.email, ADMIN.password), 'the source, whatever account');

      // Another address takes the account over its generous budget (4 + 2 = 6 failures).
      for (let i = 0; i < 2; i++) assert.equal((await from(t, '127.0.0.3', BOB.email, `spray${i}`)).status, 401);
      assertThrottled(await from(t, '127.0.0.3', BOB.email, `spray-more`), 'the account, from an address new to it');
      assertThrottled(await from(t, '127.0.0.4', BOB.email, BOB.password), 'the account, even rightly, from a place it never logged in from');
      assert.equal((await from(t, '127.0.0.1', BOB.email, BOB.password)).status, 200, 'the owner is not locked out where he logged in before');
      assert.equal((await from(t, '127.0.0.3', ADMIN.email, ADMIN.password)).status, 200, 'other accounts are not affected');

      // The login form is throttled alike.
      const login = await fetch(`${t.api}/accounts/action/?do=login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: BOB.email, password: 'x' }),
      });
      assert.ok(login.status === 401 || login.status === 429);
    });

    test('guesses sent at once from one source get no more answers than its budget', async () => {
      // One failure first; then 12 guesses at once: only the 3 left of the budget of 4 are checked, the rest 429.
      assert.equal((await from(t, '127.0.0.5', 'first@example.com', 'first-wrong')).status, 401);
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => from(t, '127.0.0.5', `someone${i}@example.com`, `guess${i}`)));
      const statuses = answers.map((a) => a.status).sort();
      assert.equal(statuses.filter((s) => s === 401).length, 3, JSON.stringify(statuses));
      for (const a of answers.filter((x) => x.status !== 401)) assertThrottled(a, 'a guess beyond the budget');
      // A client's first burst with the right password is never refused for being parallel.
      const burst = await Promise.all(Array.from({ length: 12 }, () => from(t, '127.0.0.6', ADMIN.email, ADMIN.password)));
      assert.deepEqual([...new Set(burst.map((a) => a.status))], [200]);
    });

    if (db.name === 'postgres')
      test('with two API nodes on one database, guesses spread over both spend one budget', async () => {
        const other = await startServer(
          {
            OPENSIGMA_DATABASE_URL: t.config.databaseUrl!,
            OPENSIGMA_ROLE: 'api',
            OPENSIGMA_LOGIN_FAILURES_PER_SOURCE: '4',
            OPENSIGMA_LOGIN_FAILURES_PER_ACCOUNT: '6',
          },
          { url: null },
        );
        try {
          const nodes = [t, other];
          // 4 wrong passwords from one source, alternating nodes: the budget of 4 is used once, not once per node.
          for (let i = 0; i < 4; i++) assert.equal((await from(nodes[i % 2]!, '127.0.0.7', `spread${i}@example.com`, 'wrong')).status, 401);
          for (const node of nodes) assertThrottled(await from(node, '127.0.0.7', 'spread-more@example.com', 'wrong'), 'the source, on either node');
          // An account sprayed over both nodes from new addresses closes on both, but not where its owner logged in.
          const carol = { email: 'carol-two-nodes@example.com', password: 'carol-right-password' };
          await t.running.svc.store.users.create(carol.email, carol.password);
          assert.equal((await from(t, '127.0.0.8', carol.email, carol.password)).status, 200, 'carol logs in through node 1');
          for (let i = 0; i < 6; i++) assert.equal((await from(nodes[i % 2]!, `127.0.1.${i + 1}`, carol.email, `spray${i}`)).status, 401);
          for (const node of nodes)
            assertThrottled(await from(node, '127.0.1.9', carol.email, carol.password), 'the account, from a new place, on either node');
          assert.equal((await from(other, '127.0.0.8', carol.email, carol.password)).status, 200, 'node 2 knows where carol logged in through node 1');
        } finally {
          await other.close();
        }
      });
  });
}

describe('password checks cannot be flooded, and do not tell which users exist', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ OPENSIGMA_LOGIN_FAILURES_PER_SOURCE: '100000', OPENSIGMA_LOGIN_FAILURES_PER_ACCOUNT: '100000' });
  });
  after(async () => t.close());

  test('a flood of wrong passwords is refused beyond the bounded hash queue (503, the error array), never queued without bound', async () => {
    const answers = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        fetch(`${t.api}/servers/`, { headers: { authorization: `Basic ${Buffer.from(`flood${i}@example.com:wrong`).toString('base64')}` } }).then(
          async (r) => ({ status: r.status, retry: r.headers.get('retry-after'), body: await r.json() }),
        ),
      ),
    );
    const refused = answers.filter((a) => a.status === 503);
    assert.deepEqual([...new Set(answers.map((a) => a.status))].sort(), [401, 503], JSON.stringify(answers.map((a) => a.status)));
    assert.ok(refused.every((a) => a.retry === '1' && a.body[0].error_type === 'concurrency'));
    assert.equal((await t.call('GET', '/servers/')).status, 200, 'the real user gets in once the flood is over');
  });

  test('an unknown user is answered as slowly as a known one with a wrong password: the password is hashed either way', async () => {
    const time = async (email: string) => {
      const start = process.hrtime.bigint();
      const r = await fetch(`${t.api}/servers/`, { headers: { authorization: `Basic ${Buffer.from(`${email}:wrong-${Math.random()}`).toString('base64')}` } });
      assert.equal(r.status, 401);
      await r.arrayBuffer();
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 7; i++) {
      known.push(await time(ADMIN.email));
      unknown.push(await time(`nobody-${i}@example.com`));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // A hash is tens of milliseconds and a missing user's lookup well under one: without the dummy hash the ratio is ~0.05.
    assert.ok(median(unknown) > 0.3 * median(known), `unknown ${median(unknown).toFixed(1)} ms, known ${median(known).toFixed(1)} ms`);
  });
});
