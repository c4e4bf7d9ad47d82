import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, startServer, type TestServer } from './helpers/harness.ts';

// Debian's python3-libcloud lives with the system interpreter, which another python3 on PATH may shadow.
const PY = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const hasLibcloud = spawnSync(PY, ['-c', 'import libcloud.compute.drivers.cloudsigma'], { stdio: 'ignore' }).status === 0;
const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const skip = !hasLibcloud ? 'python3-libcloud is not installed' : !hasOpenssl ? 'openssl is not installed' : false;

let t: TestServer;
let certDir: string;

before(async () => {
  if (skip) return;
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      path.join(certDir, 'key.pem'),
      '-out',
      path.join(certDir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  t = await startServer({ OPENSIGMA_TLS_CERT: path.join(certDir, 'cert.pem'), OPENSIGMA_TLS_KEY: path.join(certDir, 'key.pem') });
});

after(async () => {
  await t?.close();
  if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
});

test("Apache libcloud's CloudSigma 2.0 driver works unchanged against opensigma over HTTPS", { skip }, async () => {
  const port = new URL(t.url).port;
  // Asynchronous: the server under test runs in this process and must keep answering.
  const r = await promisify(execFile)(PY, [path.join('test', 'clients', 'libcloud_scenario.py')], {
    env: { ...process.env, EMAIL: ADMIN.email, PASSWORD: ADMIN.password, PORT: port, CA_CERT: path.join(certDir, 'cert.pem') },
    encoding: 'utf8',
    timeout: 120_000,
  }).catch((e) => assert.fail(`libcloud scenario failed:\n${e.stdout}\n${e.stderr}`));
  const steps = Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .map((s) => [s.step, s.value]),
  );
  assert.ok(steps.capabilities.includes('hypervisors'));
  assert.equal(steps.tag, 'libcloud-tag');
  assert.deepEqual(steps.drive.media, 'disk');
  assert.ok(steps.drives.includes('libcloud-drive'));
  assert.equal(steps.node.state, 'stopped');
  assert.deepEqual(steps.attached, [true]);
  assert.deepEqual(steps.policy, {
    name: 'libcloud-policy',
    rules: [
      ['accept', 'in', 'tcp', '192.0.2.0/24', '22'],
      ['drop', 'in', 'tcp', null, '22'],
    ],
  });
  assert.deepEqual(steps.policies, ['libcloud-policy']);
  assert.deepEqual(steps.firewalled, [true]);
  assert.equal(steps.policy_deleted, true);
  assert.deepEqual(steps.policies_after, []);
  assert.deepEqual(steps.tagged, ['libcloud-node']);
  assert.equal(steps.started, true);
  assert.equal(steps.running.state, 'running');
  assert.equal(steps.stopped, true);
  assert.equal(steps.clone, 'libcloud-clone');
  assert.equal(steps.destroyed, true);
  assert.deepEqual(steps.nodes_after, []);
  if (steps.images > 0) {
    assert.equal(steps.from_image.name, 'libcloud-from-image');
    assert.equal(steps.from_image.drives, 1);
    assert.equal(steps.from_image_started, true);
    assert.equal(steps.from_image_destroyed, true);
  }
});
