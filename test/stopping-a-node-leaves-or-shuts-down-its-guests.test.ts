import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { minimalServer, waitFor } from './helpers/harness.ts';
import { startNode, type NodeProcess } from './helpers/nodes.ts';
import { qemuHarness } from './helpers/drivers.ts';
import { freePort } from './helpers/cli-process.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LIB_CDROM = '7fe7bef4-e018-4d70-9bfe-5ae163631ea8';

/** Processes whose command line names `dir` (QEMUs of that data dir). */
function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(dir)) out.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Unix sockets left anywhere under `dir`. */
function socketsUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isSocket())
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('stopping a node', () => {
  const dirs: string[] = [];
  const nodes: NodeProcess[] = [];
  after(async () => {
    for (const n of nodes) await n.kill('SIGKILL');
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const dir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-exit-'));
    dirs.push(d);
    return d;
  };
  const serve = async (dataDir: string, env: Record<string, string> = {}) => {
    const n = await startNode('serve', { OPENSIGMA_SIM_HOSTS: '1', OPENSIGMA_SIM_DELAY_MS: '50', ...env }, dataDir);
    nodes.push(n);
    return n;
  };
  const running = async (n: NodeProcess, body = minimalServer('exit-test')) => {
    const uuid = (await n.call('POST', '/servers/', body)).body.objects[0].uuid as string;
    assert.equal((await n.call('POST', `/servers/${uuid}/action/?do=start`)).status, 202);
    await waitFor(async () => (await n.call('GET', `/servers/${uuid}/`)).body.status === 'running', 30000, 'running');
    return uuid;
  };
  const logged = (n: NodeProcess, re: RegExp) => n.logs.find((l) => re.test(String(l.msg)));

  test('SIGTERM with the default (leave) says it leaves the guests running, and the next start adopts them; with shutdown they are stopped', async () => {
    const d = dir();
    let n = await serve(d);
    const s = await running(n);
    assert.equal(await n.kill('SIGTERM'), 0);
    const left = logged(n, /^leaving 1 guest\(s\) running on purpose \(OPENSIGMA_ON_EXIT=leave\)/);
    assert.ok(left, JSON.stringify(n.logs.slice(-5)));
    assert.deepEqual(left.servers, [s]);

    n = await serve(d, { OPENSIGMA_ON_EXIT: 'shutdown' });
    assert.equal((await n.call('GET', `/servers/${s}/`)).body.status, 'running', 'adopted after the restart');
    assert.equal(await n.kill('SIGTERM'), 0);
    assert.ok(logged(n, /^shutting down 1 guest\(s\) before exit/), JSON.stringify(n.logs.slice(-5)));

    // What the exited node recorded, read from its database directly.
    const db = new Database(path.join(d, 'opensigma.sqlite'), { readonly: true });
    try {
      assert.deepEqual(db.prepare('SELECT status, runtime, host FROM servers WHERE uuid = ?').get(s), { status: 'stopped', runtime: null, host: null });
    } finally {
      db.close();
    }
  });

  test('kill of the npm process started by npm start stops the server it started', async () => {
    const d = dir();
    const port = await freePort();
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: REPO,
      env: { ...process.env, OPENSIGMA_DATA: d, OPENSIGMA_LISTEN: `127.0.0.1:${port}`, OPENSIGMA_SIM_HOSTS: '1', OPENSIGMA_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    npm.stdout!.on('data', (c) => (out += c));
    npm.stderr!.on('data', (c) => (out += c));
    const serving = await waitFor(
      async () =>
        out
          .split('\n')
          .map((l) => {
            try {
              return JSON.parse(l);
            } catch {
              return null;
            }
          })
          .find((l) => l?.msg === 'opensigma is serving'),
      60000,
      'npm start to serve',
    );
    const pid = serving.pid as number;
    assert.notEqual(pid, npm.pid);
    assert.ok((await fetch(`http://127.0.0.1:${port}/healthz`)).ok);
    const exited = new Promise((r) => npm.once('exit', r));
    npm.kill('SIGTERM');
    await exited;
    try {
      await waitFor(async () => !alive(pid), 15000, `the server (pid ${pid}) to stop with npm`);
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
  });

  const qemu = qemuHarness();
  test('with OPENSIGMA_ON_EXIT=shutdown no QEMU process and no socket outlives its server', { skip: qemu.skip ?? false }, async () => {
    const d = dir();
    const n = await serve(d, { OPENSIGMA_DRIVER: 'qemu', OPENSIGMA_ON_EXIT: 'shutdown', OPENSIGMA_ACPI_TIMEOUT_S: '1' });
    // The library's bootable cdrom attaches directly: no copy to wait for.
    const s = await running(n, minimalServer('qemu-exit', { drives: [{ boot_order: 1, dev_channel: '0:0', device: 'ide', drive: LIB_CDROM }] }));
    await waitFor(async () => processesUnder(d).length > 0, 10000, 'a QEMU process');
    assert.ok(socketsUnder(d).length > 0, 'QEMU has its sockets while it runs');
    assert.equal(await n.kill('SIGTERM'), 0);
    assert.deepEqual(processesUnder(d), []);
    assert.deepEqual(socketsUnder(d), []);
    void s;
  });
});
