/**
 * Real-VM figures through the API (QEMU driver): time from POST start to the guest's shell prompt on the console,
 * for 1 guest and for N at once, and time from POST shutdown (ACPI) to stopped.
 *
 *   node --import tsx bench/qemu.ts [N=4]
 *
 * Needs qemu-system-x86_64; builds the guest images into the OS temp dir (scripts/build-images.sh) when missing.
 * Prints a markdown table; `benchQemu()` returns the rows for a combined bench.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { printRows, REPO, startQemuApi, type BenchRow } from './qemu-api.ts';

const LIB_DISK = 'ba088a1e-17df-48e4-ae1a-fd243118c505';

export type QemuBenchRow = BenchRow;

function plain(s: string): string {
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}

async function consolePrompt(url: string, password: string, timeoutMs: number): Promise<void> {
  const u = new URL(url.replace(/^csconsole:/, 'tcp:'));
  const sock = net.connect(Number(u.port), u.hostname);
  sock.on('error', () => {});
  let text = '';
  let sent = false;
  sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
  const deadline = Date.now() + timeoutMs;
  let nudged = Date.now();
  try {
    for (;;) {
      const p = plain(text);
      if (!sent && p.includes('Password:')) {
        sock.write(`${password}\r\n`);
        sent = true;
        text = '';
      } else if (sent && /(^|\n)[^\n]*# $/.test(p)) return;
      if (Date.now() > deadline) throw new Error(`no prompt: ${JSON.stringify(p.slice(-200))}`);
      if (sent && Date.now() - nudged > 2000) {
        sock.write('\n');
        nudged = Date.now();
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    sock.destroy();
  }
}

export async function benchQemu(n = 4): Promise<QemuBenchRow[]> {
  const script = path.join(REPO, 'scripts', 'build-images.sh');
  const recipe = crypto.createHash('sha256').update(fs.readFileSync(script)).digest('hex').slice(0, 12);
  const images = process.env.OPENSIGMA_GUEST_IMAGES ?? path.join(os.tmpdir(), `opensigma-guest-images-${recipe}`);
  const built = spawnSync('sh', [script, images], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('cannot build the guest images');
  const { call, waitStatus, clone, close } = await startQemuApi('qemu', 'opensigma-tiny-guest.json', images, 'images');
  const rows: QemuBenchRow[] = [];
  try {
    const servers: string[] = [];
    for (let i = 0; i < n; i++) {
      const drive = await clone(LIB_DISK, `bench disk ${i}`);
      const s = await call('POST', '/servers/', {
        name: `bench-${i}`,
        cpu: 1000,
        mem: 256 * 2 ** 20,
        vnc_password: 'benchpw1',
        drives: [{ device: 'virtio', dev_channel: '0:0', boot_order: 1, drive }],
        nics: [{ ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' }],
      });
      servers.push(s.body.objects[0].uuid);
    }
    /** Whether a TCP connection to host:port is accepted (QEMU forwards it) or refused (no forward). */
    const accepted = (host: string, port: number) =>
      new Promise<boolean>((resolve) => {
        const c = net.connect(port, host);
        c.once('connect', () => (c.destroy(), resolve(true)));
        c.once('error', () => resolve(false));
      });
    /** PUT of a policy in use that drops inbound SSH -> port 22 refused at the server's address; beside the PUT's own answer time. */
    const policyEffect = async (uuid: string): Promise<QemuBenchRow[]> => {
      const s = (await call('GET', `/servers/${uuid}/`)).body;
      const ip = s.runtime.nics[0].ip_v4.uuid as string;
      const pol = (await call('POST', '/fwpolicies/', { name: 'bench', rules: [] })).body.objects[0].uuid;
      await call('PUT', `/servers/${uuid}/`, { ...s, nics: s.nics.map((n: Record<string, unknown>) => ({ ...n, firewall_policy: pol })) });
      while (!(await accepted(ip, 22))) await new Promise((r) => setTimeout(r, 20));
      const t0 = Date.now();
      await call('PUT', `/fwpolicies/${pol}/`, { name: 'bench', rules: [{ action: 'drop', direction: 'in', ip_proto: 'tcp', dst_port: '22' }] });
      const answered = Date.now() - t0;
      while (await accepted(ip, 22)) await new Promise((r) => setTimeout(r, 5));
      const effect = Date.now() - t0;
      return [
        { what: 'PUT /fwpolicies/ answered (baseline)', ms: [answered] },
        { what: `PUT /fwpolicies/ -> port 22 refused at the address (${(effect / Math.max(1, answered)).toFixed(1)}x the PUT)`, ms: [effect] },
      ];
    };
    const bootAndStop = async (group: string[], label: string) => {
      const t0 = Date.now();
      const prompts = await Promise.all(
        group.map(async (uuid) => {
          await call('POST', `/servers/${uuid}/action/?do=start`);
          await waitStatus(uuid, 'running', 120_000);
          const oc = await call('POST', `/servers/${uuid}/action/?do=open_console`);
          await consolePrompt(oc.body.console_url, 'benchpw1', 180_000);
          await call('POST', `/servers/${uuid}/action/?do=close_console`);
          return Date.now() - t0;
        }),
      );
      rows.push({ what: `POST start -> console prompt, ${label}`, ms: prompts });
      if (group.length === 1) rows.push(...(await policyEffect(group[0]!)));
      const t1 = Date.now();
      const stops = await Promise.all(
        group.map(async (uuid) => {
          await call('POST', `/servers/${uuid}/action/?do=shutdown`);
          await waitStatus(uuid, 'stopped', 120_000);
          return Date.now() - t1;
        }),
      );
      rows.push({ what: `POST shutdown (ACPI) -> stopped, ${label}`, ms: stops });
    };
    await bootAndStop(servers.slice(0, 1), '1 guest');
    if (n > 1) await bootAndStop(servers, `${n} guests at once`);
  } finally {
    await close();
  }
  return rows;
}

/** Prints the rows as a markdown table, with the goal for one guest's prompt. */
export function printQemuTable(rows: QemuBenchRow[]): void {
  const one = rows.find((r) => r.what.startsWith('POST start') && r.what.endsWith('1 guest'));
  const goal = 3000;
  const notes = one ? [`${one.ms[0]! <= goal ? 'met' : 'MISSED'}: one guest's prompt within ${goal / 1000} s of POST start (${one.ms[0]} ms)`] : [];
  printRows('QEMU (TCG), 256 MiB guests, ms', rows, notes);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  printQemuTable(await benchQemu(Number(process.argv[2] ?? 4)));
}
