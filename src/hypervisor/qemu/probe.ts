import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

/** How long the probe guest may take to prove KVM works before TCG is chosen. */
export const PROBE_TIMEOUT_MS = 4000;

export interface ProbeResult {
  accel: 'tcg' | 'kvm';
  reason: string;
}

/**
 * Decides the accelerator by booting a probe guest, because /dev/kvm existing proves nothing: on nested machines it
 * can be present and "enabled" while guests crawl and die with an emulation failure. KVM is used only when the tiny
 * guest (vmlinuz + initrd.gz from scripts/build-images.sh, in `imagesDir`) reaches its GUEST-READY line under
 * `-accel kvm -cpu host` within `timeoutMs`; otherwise TCG. The verdict is cached per host boot and QEMU version
 * in the OS temp dir, so only the first start after a reboot pays for it.
 */
export async function probeAccel(
  opts: {
    qemuBinary?: string;
    imagesDir?: string | null;
    timeoutMs?: number;
    cacheFile?: string | null;
    log?: (msg: string, fields?: Record<string, unknown>) => void;
  } = {},
): Promise<ProbeResult> {
  const qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
  const began = Date.now();
  // A guest that works under KVM boots the tiny probe kernel in well under a second; a broken KVM hangs until killed.
  const timeoutMs = opts.timeoutMs ?? PROBE_TIMEOUT_MS;
  const log = opts.log ?? (() => {});
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: 'no usable /dev/kvm' };
  }
  const kernel = opts.imagesDir ? path.join(opts.imagesDir, 'vmlinuz') : null;
  const initrd = opts.imagesDir ? path.join(opts.imagesDir, 'initrd.gz') : null;
  if (!kernel || !initrd || !fs.existsSync(kernel) || !fs.existsSync(initrd))
    return { accel: 'tcg', reason: '/dev/kvm exists but no probe guest images to prove it works (run scripts/build-images.sh)' };

  log('probing KVM: a probe guest boots under -accel kvm', { timeout_ms: timeoutMs });
  // Bounded too: the whole probe must not hold a start up for more than a few seconds.
  const version = spawnSync(qemu, ['--version'], { encoding: 'utf8', timeout: 2000 }).stdout?.split('\n')[0] ?? '?';
  let bootId = '?';
  try {
    bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    /* not Linux */
  }
  const key = `${bootId} ${version} ${fs.statSync(kernel).mtimeMs}`;
  const cacheFile = opts.cacheFile === undefined ? path.join(os.tmpdir(), 'opensigma-accel-probe.json') : opts.cacheFile;
  if (cacheFile) {
    try {
      const c = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as { key: string; result: ProbeResult };
      if (c.key === key) {
        log('KVM probe verdict from an earlier probe of this boot', { accel: c.result.accel, reason: c.result.reason, cache: cacheFile });
        return c.result;
      }
    } catch {
      /* no cache yet */
    }
  }

  const result = await new Promise<ProbeResult>((resolve) => {
    // Through sh only to switch off core dumps: a broken KVM makes QEMU abort.
    const child = spawn(
      'sh',
      [
        '-c',
        'ulimit -c 0; exec "$0" "$@"',
        qemu,
        '-accel',
        'kvm',
        '-cpu',
        'host',
        '-machine',
        'pc',
        '-m',
        '128M',
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-no-reboot',
        '-kernel',
        kernel,
        '-initrd',
        initrd,
        '-append',
        'console=ttyS0 quiet panic=-1',
        '-serial',
        'stdio',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: os.tmpdir() },
    );
    let out = '';
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(r);
    };
    const timer = setTimeout(() => finish({ accel: 'tcg', reason: `a KVM probe guest did not boot within ${timeoutMs} ms` }), timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('latin1');
      if (out.includes('GUEST-READY')) finish({ accel: 'kvm', reason: 'a KVM probe guest booted' });
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString('latin1')));
    child.on('error', (e) => finish({ accel: 'tcg', reason: `cannot run ${qemu}: ${e.message}` }));
    child.on('exit', (code, sig) =>
      finish({ accel: 'tcg', reason: `the KVM probe guest died (${sig ?? `rc ${code}`}): ${err.trim().split('\n').slice(-1)[0] ?? ''}` }),
    );
  });
  log('KVM probe done', { accel: result.accel, reason: result.reason, ms: Date.now() - began });
  if (cacheFile) {
    try {
      fs.writeFileSync(cacheFile, JSON.stringify({ key, result }));
    } catch {
      /* cache is best effort */
    }
  }
  return result;
}
