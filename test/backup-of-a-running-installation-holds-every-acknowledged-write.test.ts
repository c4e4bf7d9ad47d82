import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ADMIN } from './helpers/harness.ts';
import { runCli, startNode, type NodeProcess } from './helpers/nodes.ts';

const dirs: string[] = [];
const nodes: NodeProcess[] = [];
after(async () => {
  for (const n of nodes) await n.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('a backup taken while clients write holds every write acknowledged before it began, passes integrity_check, and serves', async () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-backup-src-'));
  const dest = `${data}-copy`;
  dirs.push(data, dest);
  const n = await startNode('serve', { OPENSIGMA_SIM_HOSTS: '1', OPENSIGMA_LOG_LEVEL: 'warn' }, data);
  nodes.push(n);
  const auth = `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`;
  const bytes = crypto.randomBytes(3 * 2 ** 20);
  const up = await fetch(`${n.api}/drives/upload/`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  assert.equal(up.status, 201);
  const drive = (await up.text()).trim();

  // Writers that never pause: each tag's creation is acknowledged when its 201 arrives.
  const acked: Array<{ uuid: string; at: number }> = [];
  let writing = true;
  const writer = async (w: number) => {
    for (let i = 0; writing; i++) {
      const r = await n.call('POST', '/tags/', { name: `w${w}-${i}` });
      if (r.status === 201) acked.push({ uuid: r.body.objects[0].uuid, at: Date.now() });
    }
  };
  const writers = [0, 1, 2].map(writer);
  while (acked.length < 20) await new Promise((r) => setTimeout(r, 20));
  const began = Date.now();
  const backup = await runCli(['backup', dest], { OPENSIGMA_DATA: data, OPENSIGMA_LOG_LEVEL: 'silent' });
  const writtenDuring = acked.filter((a) => a.at >= began).length;
  writing = false;
  await Promise.all(writers);
  assert.equal(backup.code, 0, backup.stdout + backup.stderr);
  assert.match(backup.stdout, /integrity_check ok/);
  assert.ok(writtenDuring > 0, 'clients kept writing while the backup ran');

  const before = acked.filter((a) => a.at < began).map((a) => a.uuid);
  const db = new Database(path.join(dest, 'opensigma.sqlite'), { readonly: true });
  try {
    assert.equal((db.pragma('integrity_check') as any[])[0].integrity_check, 'ok');
    const tags = new Set((db.prepare('SELECT uuid FROM tags').all() as Array<{ uuid: string }>).map((r) => r.uuid));
    const lost = before.filter((u) => !tags.has(u));
    assert.deepEqual(lost, [], `${lost.length} of ${before.length} acknowledged writes are missing`);
  } finally {
    db.close();
  }
  assert.ok(
    fs
      .readFileSync(path.join(dest, 'drives', `${drive}.img`))
      .subarray(0, bytes.length)
      .equals(bytes),
  );

  // The copy is a data dir: a node started on it serves what was acknowledged.
  await n.kill('SIGTERM');
  const restored = await startNode('serve', { OPENSIGMA_SIM_HOSTS: '1', OPENSIGMA_LOG_LEVEL: 'warn' }, dest);
  nodes.push(restored);
  assert.equal((await restored.call('GET', `/tags/${before[before.length - 1]}/`)).status, 200);
  const down = await fetch(`${restored.api}/drives/${drive}/download/`, { headers: { authorization: auth, range: `bytes=0-${bytes.length - 1}` } });
  assert.equal(down.status, 206);
  assert.ok(Buffer.from(await down.arrayBuffer()).equals(bytes));
});
