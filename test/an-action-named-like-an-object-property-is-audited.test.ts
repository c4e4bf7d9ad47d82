import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { minimalServer, startServer, type TestServer } from './helpers/harness.ts';

// Regression: an action named constructor or __proto__ was refused with no audit entry, because the action's name
// was looked up among the keys of a plain object and found Object's own.
describe('refused actions with odd names', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({});
  });
  after(async () => t.close());

  test('every refused action is an audit entry, whatever its name', async () => {
    const uuid = (await t.call('POST', '/servers/', minimalServer('odd'))).body.objects[0].uuid;
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const r = await t.call('POST', `/servers/${uuid}/action/?do=${name}`);
      assert.equal(r.status, 400, name);
    }
    const logs = (await t.call('GET', `/logs/?uuid=${uuid}&limit=0`)).body.objects as Array<{ action: string; success: boolean }>;
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty'])
      assert.ok(
        logs.some((l) => l.action === name && l.success === false),
        `${name}: ${JSON.stringify(logs.map((l) => l.action))}`,
      );
  });
});
