import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, dropPostgres, freshPostgres, waitFor } from './helpers/harness.ts';
import { startNode, type NodeProcess } from './helpers/nodes.ts';

const PG = process.env.OPENSIGMA_TEST_POSTGRES_URL;
const auth = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;

/** Two API nodes with their own data dirs on one PostgreSQL and one OPENSIGMA_STORAGE_DIR (a shared mount). */
describe('drive bytes across API nodes', { skip: PG ? false : 'needs PostgreSQL: set OPENSIGMA_TEST_POSTGRES_URL' }, () => {
  let db: string;
  let storage: string;
  let one: NodeProcess;
  let two: NodeProcess;
  before(async () => {
    db = await freshPostgres(PG!);
    storage = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-shared-'));
    const env = { OPENSIGMA_DATABASE_URL: db, OPENSIGMA_ROLE: 'api', OPENSIGMA_STORAGE_DIR: storage, OPENSIGMA_LOG_LEVEL: 'warn' };
    [one, two] = await Promise.all([startNode('serve', env), startNode('serve', env)]);
  });
  after(async () => {
    for (const n of [one, two]) if (n) await n.kill('SIGTERM');
    for (const n of [one, two]) if (n) fs.rmSync(n.dataDir, { recursive: true, force: true });
    fs.rmSync(storage, { recursive: true, force: true });
    await dropPostgres(db).catch(() => {});
  });

  const download = async (n: NodeProcess, uuid: string, length: number) => {
    const r = await fetch(`${n.api}/drives/${uuid}/download/`, { headers: { authorization: auth, range: `bytes=0-${length - 1}` } });
    assert.equal(r.status, 206);
    return Buffer.from(await r.arrayBuffer());
  };

  test('an upload through node 1 downloads byte for byte through node 2, and node 2 clones it', async () => {
    assert.notEqual(one.dataDir, two.dataDir);
    const bytes = crypto.randomBytes(2 * 2 ** 20 + 123);
    const up = await fetch(`${one.api}/drives/upload/`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    assert.equal(up.status, 201);
    const uuid = (await up.text()).trim();
    assert.ok(fs.existsSync(path.join(storage, `${uuid}.img`)), 'the image is in the shared storage dir');
    assert.ok(!fs.existsSync(path.join(one.dataDir, 'drives', `${uuid}.img`)));
    assert.ok((await download(two, uuid, bytes.length)).equals(bytes));

    const clone = await two.call('POST', `/drives/${uuid}/action/?do=clone`, { name: 'cloned-through-two' });
    assert.equal(clone.status, 202, clone.text);
    const c = clone.body.objects[0].uuid as string;
    await waitFor(async () => (await one.call('GET', `/drives/${c}/`)).body.status === 'unmounted', 20000, 'the clone');
    assert.ok((await download(one, c, bytes.length)).equals(bytes));
  });
});
