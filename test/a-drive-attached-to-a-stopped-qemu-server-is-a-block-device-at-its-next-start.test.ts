import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { GuestSpec, HypervisorDriver } from '../src/hypervisor/driver.ts';
import { qemuHarness, readUntil, PROMPT, tempDataDir } from './helpers/drivers.ts';

/**
 * CloudSigma ignores drive changes to a running server (servers-reference: only name, meta and tags change), so a
 * drive a user attaches shows up at the server's next start: there the guest sees it as a block device of the
 * drive's size, on the bus and unit its attachment names. Tiny guest at 128 MiB.
 */
const h = qemuHarness();
const MiB = 2 ** 20;

describe('a drive attached while stopped is a block device at the next start', { skip: h.skip ?? false }, () => {
  let dataDir: string;
  let driver: HypervisorDriver;
  let spec: GuestSpec;
  let con: Duplex;

  before(async () => {
    dataDir = tempDataDir('qemu-second-drive');
    driver = h.create(dataDir);
    const data = path.join(dataDir, 'data.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', data, `${48 * MiB}`]);
    const base = h.spec(dataDir);
    spec = {
      ...base,
      drives: [
        ...base.drives,
        { uuid: `e${base.uuid.slice(1)}`, device: 'virtio', dev_channel: '0:1', boot_order: null, media: 'disk', path: data, format: 'qcow2' },
      ],
    };
    await driver.start(spec);
    con = await driver.attachSerial(spec.uuid);
    con.on('error', () => {});
    await readUntil(con, PROMPT, h.bootTimeoutMs);
  });

  after(async () => {
    con?.destroy();
    await driver.powerOff(spec.uuid).catch(() => {});
    await driver.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('/proc/partitions lists the second drive with its size', async () => {
    con.write('cat /proc/partitions; echo end-$((6*7))\n');
    const out = await readUntil(con, /\nend-42\r?\n/, 20_000, false);
    // 1 KiB blocks: 48 MiB is 49152.
    assert.match(out, /\s49152\s+vdb\r?\n/, out);
  });
});
