import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { GuestSpec } from '../src/hypervisor/driver.ts';
import { guestAtPrompt, qemuHarness, tempDataDir, type GuestAtPrompt } from './helpers/drivers.ts';

/**
 * CloudSigma ignores drive changes to a running server (servers-reference: only name, meta and tags change), so a
 * drive a user attaches shows up at the server's next start: there the guest sees it as a block device of the
 * drive's size, on the bus and unit its attachment names. Tiny guest at 128 MiB.
 */
const h = qemuHarness();
const MiB = 2 ** 20;

describe('a drive attached while stopped is a block device at the next start', { skip: h.skip ?? false }, () => {
  let guest: GuestAtPrompt | undefined;

  before(async () => {
    const dataDir = tempDataDir('qemu-second-drive');
    const data = path.join(dataDir, 'data.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', data, `${48 * MiB}`]);
    const base = h.spec(dataDir);
    const spec: GuestSpec = {
      ...base,
      drives: [
        ...base.drives,
        { uuid: `e${base.uuid.slice(1)}`, device: 'virtio', dev_channel: '0:1', boot_order: null, media: 'disk', path: data, format: 'qcow2' },
      ],
    };
    guest = await guestAtPrompt(h.create(dataDir), spec, dataDir, h.bootTimeoutMs);
  });

  after(async () => guest?.stop());

  test('/proc/partitions lists the second drive with its size', async () => {
    const out = await guest!.run('cat /proc/partitions');
    // 1 KiB blocks: 48 MiB is 49152.
    assert.match(out, /\s49152\s+vdb\r?\n/, out);
  });
});
