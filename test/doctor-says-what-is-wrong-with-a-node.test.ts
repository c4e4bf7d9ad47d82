import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropPostgres, freshPostgres } from './helpers/harness.ts';
import { runCli } from './helpers/nodes.ts';

const PG = process.env.OPENSIGMA_TEST_POSTGRES_URL;

describe('opensigma doctor', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const dir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-doctor-'));
    dirs.push(d);
    return d;
  };
  const doctor = async (env: Record<string, string>) => {
    const r = await runCli(['doctor'], { OPENSIGMA_LOG_LEVEL: 'silent', ...env });
    const line = (name: string) => r.stdout.split('\n').filter((l) => l.slice(6).startsWith(name));
    return { ...r, line };
  };

  test('a healthy SQLite node passes (exit 0); every check says what it found', async () => {
    const d = dir();
    assert.equal((await runCli(['migrate'], { OPENSIGMA_DATA: d, OPENSIGMA_LOG_LEVEL: 'silent' })).code, 0);
    const r = await doctor({ OPENSIGMA_DATA: d, OPENSIGMA_REMOTE_SNAPSHOT_DIR: path.join(d, 'remote') });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const name of ['data dir', 'storage dir', 'database', 'migrations', 'clock', 'ip pool', 'dhcp pool', 'vlan pool'])
      assert.match(r.line(name)[0] ?? '', /^ok /, `${name}: ${r.stdout}`);
    assert.match(r.stdout, /this node looks right/);
  });

  test('broken configurations fail with what is wrong (exit 1)', async () => {
    const d = dir();
    const file = path.join(d, 'a-file');
    fs.writeFileSync(file, 'not a directory');
    const notDir = await doctor({ OPENSIGMA_DATA: d, OPENSIGMA_STORAGE_DIR: path.join(file, 'drives') });
    assert.equal(notDir.code, 1);
    assert.match(notDir.line('storage dir')[0]!, /^FAIL .*a-file\/drives is not writable/);

    const overlap = await doctor({ OPENSIGMA_DATA: d, OPENSIGMA_IP_POOL: '10.200.5.0/24', OPENSIGMA_DHCP_POOL: '10.200.0.0/16' });
    assert.equal(overlap.code, 1);
    assert.match(overlap.stdout, /^FAIL {2}configuration +OPENSIGMA_IP_POOL 10\.200\.5\.0\/24 overlaps OPENSIGMA_DHCP_POOL/m);

    const noDb = await doctor({ OPENSIGMA_DATA: d, OPENSIGMA_DATABASE_URL: 'postgres://nobody:pw@127.0.0.1:1/none' });
    assert.equal(noDb.code, 1);
    assert.match(noDb.line('database')[0]!, /^FAIL .*PostgreSQL is not reachable: .*ECONNREFUSED/);

    // QEMU missing from PATH (one holding node alone) while the driver needs it
    const bin = path.join(d, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const noQemu = await doctor({ OPENSIGMA_DATA: d, OPENSIGMA_DRIVER: 'qemu', PATH: bin });
    assert.equal(noQemu.code, 1);
    assert.match(noQemu.line('qemu')[0]!, /^FAIL .*qemu-system-x86_64 is not installed/);
  });

  test(
    'with PostgreSQL, a node whose storage dir is not the one another node sees fails; the same mount passes',
    { skip: PG ? false : 'needs PostgreSQL' },
    async () => {
      const db = await freshPostgres(PG!);
      try {
        const [a, b, shared] = [dir(), dir(), dir()];
        const env = (data: string, storage: string) => ({ OPENSIGMA_DATA: data, OPENSIGMA_STORAGE_DIR: storage, OPENSIGMA_DATABASE_URL: db });
        assert.equal((await runCli(['migrate'], { ...env(a, shared), OPENSIGMA_LOG_LEVEL: 'silent' })).code, 0);
        const first = await doctor(env(a, shared));
        assert.equal(first.code, 0, first.stdout);
        assert.match(first.line('shared storage')[0]!, /^ok .*no other node has run doctor yet/);
        assert.match(first.line('clock')[0]!, /^ok .*within \d+ ms of the database's/);

        const apart = await doctor(env(b, path.join(b, 'drives')));
        assert.equal(apart.code, 1);
        assert.match(apart.line('shared storage')[0]!, new RegExp(`^FAIL .*${path.join(b, 'drives')} is not the storage .* uses \\(${shared}\\)`));

        const together = await doctor(env(b, shared));
        assert.equal(together.code, 0, together.stdout);
        assert.match(together.line('shared storage')[0]!, /^ok .* is shared with /);
      } finally {
        await dropPostgres(db).catch(() => {});
      }
    },
  );
});
