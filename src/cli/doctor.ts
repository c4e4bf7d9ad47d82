import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { databaseClock, exchangeStorageMarkers, heldAddresses, ping } from '../store/inspect.ts';
import type { Config } from '../config.ts';
import { inPool, parsePool } from '../domain/cidr.ts';
import { openDialect, type Dialect } from '../store/dialect/index.ts';
import { pendingMigrations } from '../store/migrate.ts';

export type Verdict = 'ok' | 'warn' | 'fail';
export interface Check {
  name: string;
  verdict: Verdict;
  detail: string;
}

/** How far this node's clock may differ from the database's: heartbeats compare times written by different nodes. */
const MAX_SKEW_MS = 1000;
const MARKERS = '.opensigma-markers';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** Creates the directory if need be, and writes, syncs and removes a file in it. */
function writable(dir: string): string | null {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const probe = path.join(dir, `.opensigma-doctor-${process.pid}`);
    const fd = fs.openSync(probe, 'w');
    fs.writeSync(fd, 'ok');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.rmSync(probe);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

const runs = (cmd: string) => {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.split('\n')[0] ?? cmd) : null;
};

/** This node, as the storage markers name it: the host name and which data dir. */
export const nodeName = (config: Config) => `${config.hostName}:${crypto.createHash('sha256').update(config.dataDir).digest('hex').slice(0, 8)}`;

/**
 * Checks one node's configuration: its directories, its database (reachable, migrated, the same clock), with
 * PostgreSQL whether its drive storage is the one the other nodes see, QEMU and KVM, and the address pools. Every
 * check says what it found; `fail` means this node cannot work as configured.
 */
export async function doctor(config: Config): Promise<Check[]> {
  const out: Check[] = [];
  const add = (name: string, verdict: Verdict, detail: string) => out.push({ name, verdict, detail });

  for (const [name, dir] of [
    ['data dir', config.dataDir],
    ['storage dir', config.storageDir],
    ['remote snapshot dir', config.remoteSnapshotDir],
  ] as const) {
    const err = writable(dir);
    add(name, err ? 'fail' : 'ok', err ? `${dir} is not writable: ${err}` : `${dir} is writable`);
  }
  try {
    if (fs.statSync(config.storageDir).dev === fs.statSync(config.remoteSnapshotDir).dev)
      add('remote snapshot dir', 'warn', "on the same file system as the drives: a remote snapshot will not survive the loss of the drives' storage");
  } catch {
    // reported above
  }

  let dialect: Dialect | null = null;
  try {
    const began = Date.now();
    dialect = await withTimeout(openDialect(config.databaseUrl, config.dataDir), 5000, 'opening the database');
    await withTimeout(ping(dialect), 5000, 'the database');
    add('database', 'ok', `${dialect.name === 'postgres' ? 'PostgreSQL' : `SQLite in ${config.dataDir}`} answers (${Date.now() - began} ms)`);
  } catch (e) {
    add('database', 'fail', `${config.databaseUrl ? 'PostgreSQL' : 'SQLite'} is not reachable: ${(e as Error).message}`);
    await dialect?.close().catch(() => {});
    dialect = null;
  }
  if (dialect) {
    try {
      await databaseChecks(config, dialect, add);
    } finally {
      await dialect.close().catch(() => {});
    }
  }

  const qemu = runs('qemu-system-x86_64');
  const qemuImg = runs('qemu-img');
  const needed = config.driver === 'qemu';
  add(
    'qemu',
    qemu ? 'ok' : needed ? 'fail' : 'warn',
    qemu ??
      'qemu-system-x86_64 is not installed' +
        (needed ? ' (OPENSIGMA_DRIVER=qemu needs it: apt-get install qemu-system-x86)' : ' (only OPENSIGMA_DRIVER=qemu needs it)'),
  );
  add(
    'qemu-img',
    qemuImg ? 'ok' : needed ? 'fail' : 'warn',
    qemuImg ?? 'qemu-img is not installed: qcow2 library images cannot be cloned (apt-get install qemu-utils)',
  );
  if (needed && qemu) {
    const { probeAccel } = await import('../hypervisor/qemu/probe.ts');
    const { BUILTIN_LIBRARY } = await import('../storage/library.ts');
    const imagesDir = [
      path.join(BUILTIN_LIBRARY, 'images'),
      path.join(config.dataDir, 'library', 'images'),
      ...(config.libraryDir ? [path.join(config.libraryDir, 'images')] : []),
    ].find((d) => fs.existsSync(path.join(d, 'vmlinuz')));
    const p = await probeAccel({ imagesDir: imagesDir ?? null });
    add('kvm', p.accel === 'kvm' ? 'ok' : 'warn', p.accel === 'kvm' ? p.reason : `guests run under TCG (slow): ${p.reason}`);
  }
  return out;
}

async function databaseChecks(config: Config, dialect: Dialect, add: (name: string, verdict: Verdict, detail: string) => void): Promise<void> {
  const pending = await pendingMigrations(dialect);
  if (pending.length)
    add('migrations', 'warn', `${pending.length} not applied (${pending.join(', ')}): every node applies them when it starts, or run: npx opensigma migrate`);
  else add('migrations', 'ok', 'the schema is up to date');

  if (dialect.name === 'postgres') {
    const before = Date.now();
    const t = await databaseClock(dialect);
    const after = Date.now();
    const skew = Math.round(t - (before + after) / 2);
    const ok = Math.abs(skew) <= MAX_SKEW_MS + (after - before) / 2;
    add(
      'clock',
      ok ? 'ok' : 'fail',
      ok
        ? `within ${Math.abs(skew)} ms of the database's`
        : `${skew > 0 ? 'behind' : 'ahead of'} the database's by ${Math.abs(skew)} ms: ` +
            'heartbeats compare times written by different nodes (run an NTP client, e.g. systemd-timesyncd)',
    );
    if (!pending.length) await sharedStorage(config, dialect, add);
    else add('shared storage', 'warn', 'not checked until the schema is migrated');
  } else add('clock', 'ok', 'SQLite: one machine, one clock');

  if (pending.length) {
    add('pools', 'warn', 'not checked until the schema is migrated');
    return;
  }
  // The pools: what the database holds must lie inside what this node is configured to hand out.
  const ipPool = parsePool(config.ipPool, 'OPENSIGMA_IP_POOL');
  const dhcp = parsePool(config.dhcpPool, 'OPENSIGMA_DHCP_POOL');
  const { ips, leases, slots } = await heldAddresses(dialect);
  const outside = ips.filter((ip) => !inPool(ipPool, ip));
  const size = ipPool.last - ipPool.first + 1;
  add(
    'ip pool',
    outside.length ? 'warn' : 'ok',
    outside.length
      ? `${outside.length} IP(s) held outside OPENSIGMA_IP_POOL ${ipPool.cidr}: ${outside.slice(0, 5).join(', ')}`
      : `${ips.length} of ${size} addresses of ${ipPool.cidr} held`,
  );
  const strays = leases.filter((ip) => !inPool(dhcp, ip));
  add(
    'dhcp pool',
    strays.length ? 'warn' : 'ok',
    strays.length ? `${strays.length} lease(s) outside OPENSIGMA_DHCP_POOL ${dhcp.cidr}` : `${leases.length} lease(s) in ${dhcp.cidr}`,
  );
  const over = slots.filter((s) => s >= config.vlanPool);
  add(
    'vlan pool',
    over.length ? 'warn' : 'ok',
    over.length ? `${over.length} VLAN(s) beyond OPENSIGMA_VLAN_POOL ${config.vlanPool}` : `${slots.length} of ${config.vlanPool} VLANs held`,
  );
}

/**
 * Drive bytes must be one storage seen by every node at the same path. Each node's doctor writes a marker with a
 * random token into its storage dir and into the database; a node that does not find another's marker, with that
 * token, in its own storage dir does not share it.
 */
async function sharedStorage(config: Config, dialect: Dialect, add: (name: string, verdict: Verdict, detail: string) => void): Promise<void> {
  const me = nodeName(config);
  const dir = path.join(config.storageDir, MARKERS);
  const token = crypto.randomUUID();
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, me), token);
  } catch (e) {
    add('shared storage', 'fail', `cannot write a marker in ${dir}: ${(e as Error).message}`);
    return;
  }
  const others = await exchangeStorageMarkers(dialect, { node: me, token, dir: config.storageDir });
  if (others.length === 0) {
    add('shared storage', 'ok', `marker written in ${config.storageDir}; no other node has run doctor yet (run it on every node)`);
    return;
  }
  const missing = others.filter((o) => {
    try {
      return fs.readFileSync(path.join(dir, o.node), 'utf8') !== o.token;
    } catch {
      return true;
    }
  });
  if (missing.length)
    add(
      'shared storage',
      'fail',
      `${config.storageDir} is not the storage ${missing.map((o) => `${o.node} uses (${o.dir})`).join(', ')}: ` +
        'drives written through one node would be missing on the other. ' +
        'Mount one shared file system at the same path on every node and set OPENSIGMA_STORAGE_DIR to it',
    );
  else add('shared storage', 'ok', `${config.storageDir} is shared with ${others.map((o) => o.node).join(', ')}`);
}
