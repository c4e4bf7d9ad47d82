import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ApiError, ERROR_CODE_HEADER, ERROR_CODES, errors } from '../src/errors.ts';
import { startServer } from './helpers/harness.ts';

test('each kind in the catalogue answers its own code, and every code is listed once', () => {
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length);
  const seen = new Map<string, string>();
  for (const [kind, make] of Object.entries(errors)) {
    // Arguments of the right shape for every builder: strings, numbers, a wire error for an injected fault.
    const e = (make as (...a: unknown[]) => ApiError)(
      kind === 'injectedFault' ? 500 : kind === 'methodNotAllowed' ? ['GET'] : /Timeout|Large|Throttled|chunk/i.test(kind) ? 1 : 'x',
      kind === 'injectedFault' ? { error_message: 'm', error_point: null, error_type: 'backend' } : 'y',
      'z',
    );
    assert.ok(e instanceof ApiError, kind);
    assert.ok((ERROR_CODES as readonly string[]).includes(e.code), `${kind}: ${e.code}`);
    assert.equal(e.headers[ERROR_CODE_HEADER], e.code, kind);
    assert.ok(!seen.has(e.code), `${kind} and ${seen.get(e.code)} share ${e.code}`);
    seen.set(e.code, kind);
    assert.deepEqual(Object.keys(e.errors[0]!).sort(), ['error_message', 'error_point', 'error_type'], kind);
  }
  assert.deepEqual([...seen.keys()].sort(), [...ERROR_CODES].sort(), 'every listed code is used by one kind');
});

test('the code reaches the client beside an unchanged body, also where the answer is written on the socket', async () => {
  const t = await startServer();
  try {
    const wrong = await t.call('GET', '/no-such-thing/');
    assert.equal(wrong.status, 404);
    assert.equal(wrong.headers.get(ERROR_CODE_HEADER), 'OS_ERR_NO_ROUTE');
    assert.deepEqual(wrong.body, [{ error_message: 'The requested URL was not found', error_point: null, error_type: 'notexist' }]);
    const schema = await t.call('GET', '/servers/?limit=-5');
    assert.equal(schema.status, 400, schema.text);
    assert.match(schema.headers.get(ERROR_CODE_HEADER) ?? '', /^OS_ERR_(SCHEMA|INVALID)$/);

    const head = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(Number(new URL(t.url).port), '127.0.0.1');
      let got = '';
      sock.on('data', (d) => (got += d));
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
      sock.write('NOT HTTP AT ALL\r\n\r\n');
    });
    assert.match(head, /^HTTP\/1\.1 400 /);
    assert.match(head, /\r\nx-opensigma-error-code: OS_ERR_BAD_HTTP\r\n/i);
  } finally {
    await t.close();
  }
});
