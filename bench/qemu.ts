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
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.ts';
import { serve } from '../src/server.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LIB_DISK = 'ba088a1e-17df-48e4-ae1a-fd243118c505';
const ADMIN = { email: 'bench@example.com', password: 'bench-password' };

export interface QemuBenchRow {
  what: string;
  ms: number[];
}

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
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-qemu-'));
  const libDir = path.join(dataDir, 'library');
  fs.mkdirSync(libDir);
  fs.copyFileSync(path.join(REPO, 'library', 'opensigma-tiny-guest.json'), path.join(libDir, 'opensigma-tiny-guest.json'));
  fs.symlinkSync(images, path.join(libDir, 'images'));
  const config = loadConfig(
    {
      OPENSIGMA_LISTEN: '127.0.0.1:0',
      OPENSIGMA_DATA: dataDir,
      OPENSIGMA_DRIVER: 'qemu',
      OPENSIGMA_ADMIN_EMAIL: ADMIN.email,
      OPENSIGMA_ADMIN_PASSWORD: ADMIN.password,
      OPENSIGMA_LOG_LEVEL: 'silent',
    },
    {},
  );
  const running = await serve(config, { logger: false });
  const api = `${running.url}/api/2.0`;
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${api}${p}`, {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const waitStatus = async (uuid: string, status: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while ((await call('GET', `/servers/${uuid}/`)).body?.status !== status) {
      if (Date.now() > deadline) throw new Error(`${uuid} never became ${status}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const rows: QemuBenchRow[] = [];
  try {
    const servers: string[] = [];
    for (let i = 0; i < n; i++) {
      const cl = await call('POST', `/libdrives/${LIB_DISK}/action/?do=clone`, { name: `bench disk ${i}` });
      if (cl.status !== 202) throw new Error(`clone: ${JSON.stringify(cl.body)}`);
      const drive = cl.body.objects[0].uuid;
      const deadline = Date.now() + 60_000;
      while ((await call('GET', `/drives/${drive}/`)).body.status !== 'unmounted') {
        if (Date.now() > deadline) throw new Error('clone never finished');
        await new Promise((r) => setTimeout(r, 50));
      }
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
    const list = await call('GET', '/servers/detail/');
    for (const s of list.body?.objects ?? []) if (s.status !== 'stopped') await call('POST', `/servers/${s.uuid}/action/?do=stop`);
    await new Promise((r) => setTimeout(r, 2000));
    await running.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return rows;
}

/** Prints the rows as a markdown table, with the issue's goal for one guest's prompt. */
export function printQemuTable(rows: QemuBenchRow[]): void {
  const load = os.loadavg()[0]!.toFixed(1);
  const out = [`\n| QEMU (TCG), 256 MiB guests, load average ${load} | min ms | max ms |`, '| --- | ---: | ---: |'];
  for (const r of rows) out.push(`| ${r.what} | ${Math.min(...r.ms)} | ${Math.max(...r.ms)} |`);
  const one = rows.find((r) => r.what.startsWith('POST start') && r.what.endsWith('1 guest'));
  if (one) out.push('', `- ${one.ms[0]! <= 10_000 ? 'met' : 'MISSED'}: one guest's prompt within 10 s of POST start (${one.ms[0]} ms)`);
  process.stdout.write(out.join('\n') + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  printQemuTable(await benchQemu(Number(process.argv[2] ?? 4)));
}
