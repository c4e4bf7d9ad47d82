import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { minimalServer, startServer, type TestServer } from './helpers/harness.ts';
import { FIXTURES, readDump } from './helpers/dumps.ts';

const GiB = 1024 ** 3;

describe('capabilities', () => {
  const servers: TestServer[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const s of servers) await s.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('GET /capabilities/ has every key of the transcript, with the same types', async () => {
    const t = await startServer();
    servers.push(t);
    const ours = (await t.call('GET', '/capabilities/')).body;
    // this dump has no blank line between headers and body
    const raw = fs.readFileSync(path.join(FIXTURES, 'response_capabilities'), 'utf8');
    const theirs = JSON.parse(raw.slice(raw.indexOf('{')));
    const walk = (o: any, d: any, at: string) => {
      for (const k of Object.keys(d)) {
        assert.ok(k in o, `missing ${at}${k}`);
        if (d[k] && typeof d[k] === 'object' && !Array.isArray(d[k])) walk(o[k], d[k], `${at}${k}.`);
        else assert.equal(typeof o[k], typeof d[k], `${at}${k}`);
      }
    };
    walk(ours, theirs, '');
    assert.deepEqual((await t.call('GET', '/capabilities/schema/')).body, readDump('response_capabilities_schema').body);
  });

  test('an operator override in <data>/capabilities.json is the limit server create enforces', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-caps-'));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'capabilities.json'), JSON.stringify({ hosts: { amd: { mem: { max: GiB } } } }));
    const t = await startServer({ OPENSIGMA_DATA: dir });
    servers.push(t);
    const caps = (await t.call('GET', '/capabilities/')).body;
    assert.equal(caps.hosts.amd.mem.max, GiB);
    assert.equal(caps.hosts.amd.mem.min, 268435456, 'the rest of the defaults stay');
    const big = await t.call('POST', '/servers/', minimalServer('too-big', { cpu_type: 'amd', mem: 2 * GiB }));
    assert.equal(big.status, 400);
    assert.equal(big.body[0].error_type, 'validation');
    assert.equal((await t.call('GET', '/servers/')).body.meta.total_count, 0);
    const fits = await t.call('POST', '/servers/', minimalServer('fits', { cpu_type: 'amd', mem: GiB }));
    assert.equal(fits.status, 201);
    // the default allows much more: the override, not a constant, refused 2 GiB
    const plain = await startServer();
    servers.push(plain);
    assert.equal((await plain.call('POST', '/servers/', minimalServer('ok', { cpu_type: 'amd', mem: 2 * GiB }))).status, 201);
  });
});
