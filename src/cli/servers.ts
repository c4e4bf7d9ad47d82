import { randomBytes } from '../domain/random.ts';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { Option, type Command } from 'commander';
import { apiOf, collect, example, parseInteger, parseSize, resolve, withProfile } from './client.ts';
import { joinConsole } from './console.ts';
import { CliError, UsageError } from './errors.ts';
import type { Api, Json } from './http.ts';
import { printObject, withOutput } from './output.ts';
import { createCommand, editCommand, getCommand, kind, listCommand, type Opts } from './resources.ts';
import { waitForJob, waitForServer, withWait } from './wait.ts';

const SERVERS = kind({ path: 'servers', noun: 'server', columns: ['uuid', 'name', 'status', 'cpu', 'mem', 'smp'], filters: ['name', 'tag', 'status'] });

/** The flags create and edit share: the fields people set most. */
function serverFlags(cmd: Command, creating: boolean): Command {
  cmd
    .option('--name <name>', 'its name')
    .option('--cpu <mhz>', 'CPU in MHz, e.g. 2000')
    .option('--mem <size>', 'memory, e.g. 1G or 512M')
    .option('--smp <n>', 'number of virtual CPUs')
    .option('--vnc-password <pw>', creating ? 'VNC and console password (default: a random one)' : 'VNC and console password');
  if (creating)
    cmd.option('--dhcp', 'add a NIC that takes its address by DHCP').option('--drive <name-or-uuid>', 'attach a drive (repeatable; the first boots)', collect);
  return cmd;
}

async function fillServer(api: Api, body: Record<string, unknown>, opts: Opts, creating: boolean): Promise<void> {
  if (opts.name !== undefined) body.name = opts.name;
  if (opts.cpu !== undefined) body.cpu = parseInteger(String(opts.cpu), '--cpu');
  if (opts.mem !== undefined) body.mem = parseSize(String(opts.mem), '--mem');
  if (opts.smp !== undefined) body.smp = parseInteger(String(opts.smp), '--smp');
  if (opts.vncPassword !== undefined) body.vnc_password = opts.vncPassword;
  if (!creating) return;
  body.cpu ??= 1000;
  body.mem ??= 512 * 1024 ** 2;
  body.vnc_password ??= randomBytes(9, 'password').toString('base64url');
  if (body.name === undefined) throw new UsageError('give --name (or a definition with --from)');
  if (opts.dhcp) body.nics = [...((body.nics as unknown[]) ?? []), { ip_v4_conf: { conf: 'dhcp' }, model: 'virtio' }];
  const drives = (opts.drive as string[] | undefined) ?? [];
  const attached: Array<Record<string, unknown>> = [...((body.drives as Array<Record<string, unknown>>) ?? [])];
  for (const ref of drives) {
    const { uuid } = await resolve(api, 'drives', 'drive', ref);
    const d = await api.call('GET', `/drives/${uuid}/`);
    // Disks on virtio, cdroms on ide, each bus numbered on its own.
    const device = d.media === 'cdrom' ? 'ide' : 'virtio';
    const unit = attached.filter((x) => x.device === device).length;
    attached.push({ boot_order: attached.length + 1, dev_channel: `0:${unit}`, device, drive: uuid });
  }
  if (attached.length) body.drives = attached;
}

const ACTIONS: Array<{ verb: string; target: string | null; help: string }> = [
  { verb: 'start', target: 'running', help: 'start a server' },
  { verb: 'stop', target: 'stopped', help: 'stop a server at once (pulls the plug)' },
  { verb: 'shutdown', target: 'stopped', help: 'ask the guest to power off (ACPI)' },
  { verb: 'restart', target: 'running', help: 'restart a running server' },
];

export function registerServers(program: Command): void {
  const g = program.command('servers').alias('server').description('virtual machines');
  listCommand(g, SERVERS);
  getCommand(g, SERVERS);
  const ex = 'opensigma servers create --name web1 --cpu 2000 --mem 1G --dhcp --drive debian-disk';
  const create = createCommand(
    g,
    SERVERS,
    (c) => serverFlags(c, true),
    (api, b, o) => fillServer(api, b, o, true),
    ex,
  );
  create.addHelpText('after', '  $ opensigma servers create --from server.json');
  editCommand(
    g,
    SERVERS,
    (c) => serverFlags(c, false),
    (api, b, o) => fillServer(api, b, o, false),
  );

  for (const a of ACTIONS) {
    const cmd = withWait(withProfile(g.command(`${a.verb} <name-or-uuid...>`).description(a.help)), `it is ${a.target}`);
    example(cmd, `opensigma servers ${a.verb} web1 --wait`);
    cmd.action(async (refs: string[], opts: Opts) => {
      const api = apiOf(opts);
      for (const ref of refs) {
        const s = await resolve(api, 'servers', 'server', ref);
        await api.call('POST', `/servers/${s.uuid}/action/`, undefined, { do: a.verb });
        if (opts.wait) await waitForServer(api, s.uuid, ref, a.target!, opts.timeout);
        console.log(opts.wait ? `server ${ref} is ${a.target}` : `${a.verb}: server ${ref}`);
      }
    });
  }

  const clone = withWait(withOutput(withProfile(g.command('clone <name-or-uuid>').description('copy a server and its disks'))), 'the copy is done');
  clone.option('--name <name>', 'name of the clone (default: by the profile clone_naming)');
  clone.option('--random-vnc-password', 'give the clone a new VNC password');
  example(clone, 'opensigma servers clone web1 --name web2 --wait');
  clone.action(async (ref: string, opts: Opts) => {
    const api = apiOf(opts);
    const s = await resolve(api, 'servers', 'server', ref);
    const body: Record<string, unknown> = {};
    if (opts.name !== undefined) body.name = opts.name;
    if (opts.randomVncPassword) body.random_vnc_password = true;
    let made = await api.call('POST', `/servers/${s.uuid}/action/`, body, { do: 'clone' });
    if (opts.wait) {
      for (const j of made.jobs ?? []) await waitForJob(api, j.uuid, `cloning ${ref}`, opts.timeout);
      made = await api.call('GET', `/servers/${made.uuid}/`);
    }
    printObject(made, opts);
  });

  const del = withProfile(g.command('delete <name-or-uuid...>').alias('rm').description('delete stopped servers'));
  del.addOption(new Option('--recurse <what>', 'also delete their drives').choices(['all_drives', 'disks', 'cdroms']));
  example(del, 'opensigma servers delete web2 --recurse disks');
  del.action(async (refs: string[], opts: Opts) => {
    const api = apiOf(opts);
    for (const ref of refs) {
      const s = await resolve(api, 'servers', 'server', ref);
      await api.call('DELETE', `/servers/${s.uuid}/`, undefined, { recurse: opts.recurse as string | undefined });
      console.log(`deleted server ${ref}`);
    }
  });

  const rt = withOutput(withProfile(g.command('runtime <name-or-uuid>').description('runtime of a running server: its NICs, addresses and I/O')));
  example(rt, 'opensigma servers runtime web1 -o json');
  rt.action(async (ref: string, opts: Opts) => {
    const api = apiOf(opts);
    const s = await resolve(api, 'servers', 'server', ref);
    printObject(await api.call('GET', `/servers/${s.uuid}/runtime/`), opts);
  });

  const vnc = withProfile(g.command('vnc <name-or-uuid>').description("open a running server's VNC and print its vnc:// URL and password"));
  example(vnc, 'opensigma servers vnc web1');
  vnc.action(async (ref: string, opts: Opts) => {
    const api = apiOf(opts);
    const s = await resolve(api, 'servers', 'server', ref);
    const r = await api.call('POST', `/servers/${s.uuid}/action/`, undefined, { do: 'open_vnc' });
    const full = await api.call('GET', `/servers/${s.uuid}/`);
    console.log(`url:      ${r.vnc_url}\npassword: ${full.vnc_password}`);
  });

  const con = withProfile(g.command('console <name-or-uuid>').description("join this terminal to a running server's serial console"));
  example(con, 'opensigma servers console web1     # leave with Ctrl-] then q');
  con.action(async (ref: string, opts: Opts) => {
    const api = apiOf(opts);
    const s = await resolve(api, 'servers', 'server', ref);
    const r = await api.call('POST', `/servers/${s.uuid}/action/`, undefined, { do: 'open_console' });
    const full = await api.call('GET', `/servers/${s.uuid}/`);
    await joinConsole(r.console_url, full.vnc_password, ref);
  });

  const ssh = withProfile(g.command('ssh <name-or-uuid> [ssh-args...]').description("run ssh to a running server's address, as its image's user"));
  ssh.option('--user <user>', "the login (default: the boot drive's meta os_user, or debian for a Debian image, else root)");
  example(ssh, 'opensigma servers ssh web1 -- uptime', 'opensigma servers ssh web1 --user admin -- -L 8080:localhost:80');
  ssh.action(async (ref: string, args: string[], opts: Opts) => {
    const api = apiOf(opts);
    const s = await resolve(api, 'servers', 'server', ref);
    const full = await api.call('GET', `/servers/${s.uuid}/`);
    const address = addressOf(full);
    if (!address) throw new CliError(`server ${ref} has no IPv4 address${full.status === 'running' ? ' yet' : ` (it is ${full.status})`}`);
    const user = (opts.user as string | undefined) ?? (await imageUser(api, full));
    const child = spawn('ssh', [`${user}@${address}`, ...args], { stdio: 'inherit' });
    const code = await new Promise<number>((r) => {
      child.once('error', (e) => {
        console.error(`opensigma: cannot run ssh: ${e.message}`);
        r(1);
      });
      child.once('exit', (c, sig) => r(c ?? 128 + (sig ? (os.constants.signals[sig] ?? 0) : 0)));
    });
    process.exitCode = code;
  });
}

/** The first IPv4 address the server's NICs show: the runtime's (DHCP), else a static one. */
function addressOf(s: Json): string | null {
  for (const n of s.nics ?? []) {
    const ip = n.runtime?.ip_v4?.uuid ?? n.ip_v4_conf?.ip?.uuid;
    if (ip) return ip;
  }
  return null;
}

/** Who to log in as: the boot drive's meta os_user, else the user cloud images of its distribution create. */
async function imageUser(api: Api, s: Json): Promise<string> {
  const boot = [...(s.drives ?? [])].filter((d: Json) => d.drive?.uuid).sort((a: Json, b: Json) => (a.boot_order ?? 99) - (b.boot_order ?? 99))[0];
  if (!boot) return 'root';
  const d = await api.call('GET', `/drives/${boot.drive.uuid}/`).catch(() => null);
  const meta = d?.meta ?? {};
  if (meta.os_user) return String(meta.os_user);
  const distro = String(meta.distribution ?? d?.distribution ?? d?.name ?? '').toLowerCase();
  if (distro.includes('debian')) return 'debian';
  if (distro.includes('ubuntu')) return 'ubuntu';
  return 'root';
}
