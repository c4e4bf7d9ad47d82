import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import type { ContextProvider, GuestEvent, GuestSpec, HypervisorDriver } from '../../src/hypervisor/driver.ts';
import { SimDriver, SIM_META } from '../../src/hypervisor/sim/index.ts';
import { QemuDriver } from '../../src/hypervisor/qemu/index.ts';

const MiB = 2 ** 20;
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What the conformance suite needs to drive one kind of hypervisor. */
export interface DriverHarness {
  name: 'sim' | 'qemu';
  /** Why this driver cannot run here (the suite skips it), or null. */
  skip: string | null;
  create(dataDir: string, context?: ContextProvider): HypervisorDriver;
  /** A bootable guest with one disk and one public NIC (plus whatever `over` changes). */
  spec(dataDir: string, over?: Partial<GuestSpec>): GuestSpec;
  /** A guest whose start must fail. */
  failingSpec(dataDir: string): GuestSpec;
  /** Kills the guest behind the driver's back. */
  crash(driver: HypervisorDriver, uuid: string): Promise<void>;
  /** Files or processes the guest left behind after it stopped (must be none). */
  leftovers(dataDir: string, uuid: string): string[];
  /** Generous upper bound for a boot to a prompt. */
  bootTimeoutMs: number;
}

let seq = 0;
export function newUuid(): string {
  const n = (++seq).toString(16).padStart(4, '0');
  return `0c0f7e57-${n}-4000-8000-${process.pid.toString(16).padStart(12, '0')}`;
}

function baseSpec(over: Partial<GuestSpec>): GuestSpec {
  const uuid = over.uuid ?? newUuid();
  return {
    uuid,
    name: `conformance-${uuid.slice(9, 13)}`,
    cpu: 1000,
    mem: 128 * MiB,
    smp: 1,
    cpu_type: 'amd',
    cpu_model: null,
    cpus_instead_of_cores: false,
    enable_numa: false,
    hv_relaxed: false,
    hv_tsc: false,
    vnc_password: 'conform1',
    context: false,
    meta: {},
    drives: [],
    nics: [],
    ...over,
  };
}

/**
 * A second octet of 127.0.0.0/8 for this test process: a public NIC's address is bound on the host (QEMU forwards
 * its ports into the guest), so test processes running at once on one machine must not pick the same addresses.
 */
const LOOPBACK_OCTET = 20 + (process.pid % 180);

/** A loopback address of this test process's own range (`127.<octet>.<third>.<last>`). */
export function loopbackAddress(third: number, last: number): string {
  return `127.${LOOPBACK_OCTET}.${third}.${last}`;
}

/** Address pools of their own for a test server that boots real guests (see LOOPBACK_OCTET). */
export function loopbackPools(): Record<string, string> {
  return { OPENSIGMA_IP_POOL: `127.${LOOPBACK_OCTET}.0.0/24`, OPENSIGMA_DHCP_POOL: `127.${LOOPBACK_OCTET}.16.0/20` };
}

function nicFor(uuid: string, i = 1): GuestSpec['nics'][number] {
  const ip = `127.${LOOPBACK_OCTET}.1.${10 + (seq % 200)}`;
  return {
    mac: `22:${uuid.slice(9, 11)}:${uuid.slice(11, 13)}:00:00:${i.toString(16).padStart(2, '0')}`,
    model: 'virtio',
    boot_order: null,
    kind: 'public',
    ip,
    vlan: null,
  };
}

export const simHarness: DriverHarness = {
  name: 'sim',
  skip: null,
  create: (dataDir) => new SimDriver({ hostName: 'conformance', dataDir, delayMs: 20, acpiDelayMs: 50, capacity: { cpu: 100000, mem: 64 * 2 ** 30 } }),
  spec(_dataDir, over = {}) {
    const s = baseSpec(over);
    if (!over.drives)
      s.drives = [{ uuid: `d${s.uuid.slice(1)}`, device: 'virtio', dev_channel: '0:0', boot_order: 1, media: 'disk', path: null, format: 'raw' }];
    if (!over.nics) s.nics = [nicFor(s.uuid)];
    return s;
  },
  failingSpec(dataDir) {
    return this.spec(dataDir, { meta: { [SIM_META.failNext]: 'start' } });
  },
  async crash(driver, uuid) {
    (driver as SimDriver).crash(uuid);
  },
  leftovers: () => [],
  bootTimeoutMs: 5000,
};

/**
 * The guest images, built once per machine into a cache under the OS temp dir (or OPENSIGMA_GUEST_IMAGES) with
 * scripts/build-images.sh. Returns the dir, or why they cannot be had.
 */
function guestImages(): { dir: string } | { skip: string } {
  if (process.env.OPENSIGMA_TEST_QEMU === '0') return { skip: 'OPENSIGMA_TEST_QEMU=0' };
  const probe = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return { skip: 'qemu-system-x86_64 is not on PATH' };
  // One cache per version of the recipe: checkouts with different scripts must not rebuild under each other's guests.
  const script = path.join(REPO, 'scripts', 'build-images.sh');
  const recipe = crypto.createHash('sha256').update(fs.readFileSync(script)).digest('hex').slice(0, 12);
  const dir = process.env.OPENSIGMA_GUEST_IMAGES ?? path.join(os.tmpdir(), `opensigma-guest-images-${recipe}`);
  const built = spawnSync('sh', [script, dir], { encoding: 'utf8', timeout: 300_000 });
  if (built.status !== 0 || !fs.existsSync(path.join(dir, 'boot-disk.qcow2')))
    return { skip: `guest images cannot be built: ${(built.stderr || built.error?.message || '').trim().split('\n').slice(-2).join(' ')}` };
  return { dir };
}

let images: { dir: string } | { skip: string } | undefined;
function qemuImages() {
  images ??= guestImages();
  return images;
}

/** Where the guest images were built, or null when qemu tests are skipped. */
export function qemuImagesDir(): string | null {
  const img = qemuImages();
  return 'dir' in img ? img.dir : null;
}

export function qemuHarness(): DriverHarness {
  const img = qemuImages();
  const skip = 'skip' in img ? img.skip : null;
  return {
    name: 'qemu',
    skip,
    create: (dataDir, context) => new QemuDriver({ dataDir, context, vncDisplayBase: 150 + (process.pid % 500) }),
    spec(dataDir, over = {}) {
      const s = baseSpec(over);
      if (!over.drives) {
        // Each guest boots from its own copy-on-write overlay of the golden disk, as a cloned drive would.
        const overlay = path.join(dataDir, `disk-${s.uuid}.qcow2`);
        if (!('dir' in img)) throw new Error('no guest images');
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.join(img.dir, 'boot-disk.qcow2'), '-F', 'qcow2', overlay]);
        s.drives = [{ uuid: `d${s.uuid.slice(1)}`, device: 'virtio', dev_channel: '0:0', boot_order: 1, media: 'disk', path: overlay, format: 'qcow2' }];
      }
      if (!over.nics) s.nics = [nicFor(s.uuid)];
      return s;
    },
    failingSpec(dataDir) {
      const s = this.spec(dataDir);
      s.drives[0]!.path = path.join(dataDir, 'no-such-image.qcow2');
      return s;
    },
    async crash(driver, uuid) {
      const pid = Number(fs.readFileSync(path.join(this.dataDirOf(driver), 'qemu', uuid, 'qemu.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
    },
    leftovers(dataDir, uuid) {
      const out: string[] = [];
      const runDir = path.join(dataDir, 'qemu', uuid);
      if (fs.existsSync(runDir)) out.push(...fs.readdirSync(runDir).map((f) => path.join(runDir, f)), runDir);
      for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
        try {
          if (fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(`opensigma-${uuid}`)) out.push(`process ${p}`);
        } catch {
          /* exited meanwhile */
        }
      }
      return out;
    },
    bootTimeoutMs: 90_000,
    dataDirOf(driver: HypervisorDriver): string {
      return (driver as unknown as { opts: { dataDir: string } }).opts.dataDir;
    },
  } as DriverHarness & { dataDirOf(d: HypervisorDriver): string };
}

/** Every driver the conformance suite runs against on this machine (qemu is listed with a skip reason if absent). */
export function drivers(): DriverHarness[] {
  return [simHarness, qemuHarness()];
}

/** Records a driver's events so a test can wait for one that may already have happened. */
export function recordEvents(driver: HypervisorDriver): { events: GuestEvent[]; wait(uuid: string, timeoutMs: number): Promise<GuestEvent> } {
  const events: GuestEvent[] = [];
  const waiters: Array<() => void> = [];
  driver.onEvent((e) => {
    events.push(e);
    for (const w of waiters.splice(0)) w();
  });
  return {
    events,
    async wait(uuid, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const e = events.find((x) => x.uuid === uuid);
        if (e) return e;
        if (Date.now() > deadline) throw new Error(`no event for ${uuid} within ${timeoutMs} ms`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
  };
}

/** Strips terminal escape sequences (busybox ash queries the cursor position after its prompt). */
export function plain(s: string): string {
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}

/** Reads from a console until `re` matches the text so far (escapes stripped), nudging with Enter now and then. */
export async function readUntil(con: Duplex, re: RegExp, timeoutMs: number, nudge = true): Promise<string> {
  let text = '';
  const onData = (c: Buffer) => (text += c.toString('latin1'));
  con.on('data', onData);
  const deadline = Date.now() + timeoutMs;
  let lastNudge = Date.now();
  try {
    while (!re.test(plain(text))) {
      if (Date.now() > deadline) throw new Error(`console never showed ${re}; got: ${JSON.stringify(plain(text).slice(-300))}`);
      if (nudge && Date.now() - lastNudge > 3000) {
        con.write('\n');
        lastNudge = Date.now();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return plain(text);
  } finally {
    con.off('data', onData);
  }
}

/** A shell prompt at the end of the console output, whatever the guest's hostname: a line ending in "# ". */
export const PROMPT = /(^|\n)[^\n]*# $/;

export function tempDataDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `opensigma-${name}-`));
}

let debian: { dir: string } | { skip: string } | undefined;

/**
 * The "Debian 12" library image (scripts/build-debian-image.sh): the one in library/images/debian-12 when it is up to
 * date (set-up builds it there), else built once per recipe into a cache under the OS temp dir (or
 * OPENSIGMA_DEBIAN_IMAGE). Returns the dir holding disk.qcow2, or why there is none here.
 */
export function debianImage(): { dir: string } | { skip: string } {
  if (debian) return debian;
  const qemu = qemuImages();
  if ('skip' in qemu) return (debian = qemu);
  if (process.env.OPENSIGMA_TEST_DEBIAN === '0') return (debian = { skip: 'OPENSIGMA_TEST_DEBIAN=0' });
  const script = path.join(REPO, 'scripts', 'build-debian-image.sh');
  const shipped = path.join(REPO, 'library', 'images', 'debian-12');
  if (spawnSync('sh', [script, '--check', shipped]).status === 0) return (debian = { dir: shipped });
  const recipe = crypto.createHash('sha256').update(fs.readFileSync(script)).digest('hex').slice(0, 12);
  const dir = process.env.OPENSIGMA_DEBIAN_IMAGE ?? path.join(os.tmpdir(), `opensigma-debian-12-${recipe}`);
  const built = spawnSync('sh', [script, dir], { encoding: 'utf8', timeout: 900_000 });
  if (built.status !== 0 || !fs.existsSync(path.join(dir, 'disk.qcow2')))
    return (debian = { skip: `the Debian image cannot be built: ${(built.stderr || built.error?.message || '').trim().split('\n').slice(-2).join(' ')}` });
  return (debian = { dir });
}

/** A started guest with its console at the prompt; `run` types a command and resolves with what it printed. */
export interface GuestAtPrompt {
  con: Duplex;
  run(cmd: string, timeoutMs?: number): Promise<string>;
  /** Closes the console, powers the guest off, closes the driver and removes `dataDir`. */
  stop(): Promise<void>;
}

export async function guestAtPrompt(driver: HypervisorDriver, spec: GuestSpec, dataDir: string, bootTimeoutMs: number): Promise<GuestAtPrompt> {
  await driver.start(spec);
  const con = await driver.attachSerial(spec.uuid);
  con.on('error', () => {});
  await readUntil(con, PROMPT, bootTimeoutMs);
  return {
    con,
    // The end mark is computed, so the echo of the command line cannot match it.
    run(cmd, timeoutMs = 30_000) {
      con.write(`${cmd}; echo end-$((6*7))\n`);
      return readUntil(con, /\nend-42\r?\n/, timeoutMs, false);
    },
    async stop() {
      con.destroy();
      await driver.powerOff(spec.uuid).catch(() => {});
      await driver.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
