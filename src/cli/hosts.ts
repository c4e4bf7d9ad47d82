import { example } from './client.ts';
import type { Command } from 'commander';
import type { Config } from '../config.ts';
import type { Store } from '../store/index.ts';
import type { HostUse } from '../store/hosts.ts';

/** What the command groups share with main.ts: the settings flags and a store opened from them. */
export interface CliContext {
  withSettings(cmd: Command): Command;
  openStore(opts: Record<string, unknown>): Promise<{ config: Config; store: Store }>;
}

const GiB = 1024 ** 3;

function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

/** up, down or drained (up but taking no new servers). */
export const hostState = (h: HostUse): string => (h.state === 'up' && h.drained ? 'drained' : h.drained ? 'down,drained' : h.state);

/** The hosts as a table: one line each, columns padded. */
export function hostTable(hosts: HostUse[], now = Date.now()): string {
  const rows = [
    ['NAME', 'DRIVER', 'CPU MHZ (USED/TOTAL)', 'MEM GIB (USED/TOTAL)', 'STATE', 'LAST HEARTBEAT', 'SERVERS'],
    ...hosts.map((h) => [
      h.name,
      h.driver,
      `${h.used_cpu}/${h.cpu}`,
      `${(h.used_mem / GiB).toFixed(1)}/${(h.mem / GiB).toFixed(1)}`,
      hostState(h),
      ago(h.heartbeat_at, now),
      String(h.servers),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** `opensigma hosts list | drain | undrain | remove`: the compute hosts as the database knows them. */
export function registerHostCommands(program: Command, ctx: CliContext): void {
  const hosts = program.command('hosts').description('manage compute hosts (works while the cluster runs)');
  const withStore =
    <A extends unknown[]>(fn: (store: Store, ...args: A) => Promise<void>) =>
    async (...args: A) => {
      // commander passes the positional arguments, then the options, then the command
      const opts = args[args.length - 2] as Record<string, unknown>;
      const { store } = await ctx.openStore(opts);
      try {
        await fn(store, ...args);
      } finally {
        await store.close();
      }
    };

  ctx
    .withSettings(
      example(
        hosts.command('list').description('every host: driver, capacity and use, state, last heartbeat, servers').option('--json', 'print JSON'),
        'opensigma hosts list --data /var/lib/opensigma',
      ),
    )
    .action(
      withStore(async (store, opts: { json?: boolean }) => {
        const list = await store.hosts.listWithUse();
        if (opts.json)
          console.log(
            JSON.stringify(
              list.map((h) => ({ ...h, state: hostState(h) })),
              null,
              2,
            ),
          );
        else if (list.length === 0) console.log('no compute hosts yet: start `opensigma serve` or `opensigma agent`');
        else console.log(hostTable(list));
      }),
    );

  ctx
    .withSettings(
      example(hosts.command('drain <name>').description('place no new servers on a host; those running there stay'), 'opensigma hosts drain node-2'),
    )
    .action(
      withStore(async (store, name: string) => {
        if (!(await store.hosts.setDrained(name, true))) return noHost(name);
        const h = (await store.hosts.listWithUse()).find((x) => x.name === name)!;
        console.log(`drained ${name}: no new servers go there; ${h.servers} server(s) stay until stopped`);
      }),
    );

  ctx.withSettings(example(hosts.command('undrain <name>').description('let a drained host take new servers again'), 'opensigma hosts undrain node-2')).action(
    withStore(async (store, name: string) => {
      if (!(await store.hosts.setDrained(name, false))) return noHost(name);
      console.log(`${name} takes new servers again`);
    }),
  );

  ctx
    .withSettings(
      example(
        hosts.command('remove <name>').description('forget a host; refused while servers are placed there or its agent is alive'),
        'opensigma hosts remove node-2 --force',
      ),
    )
    .option('--force', 'a host that is down: record the servers still placed there as stopped, then forget it')
    .action(
      withStore(async (store, name: string, opts: { force?: boolean }) => {
        if (opts.force) {
          const { forgetHost } = await import('../compute/host-loss.ts');
          const f = await forgetHost(store, name);
          if (f.up) {
            console.error(`${name} is up: its agent is alive; stop that agent first`);
            process.exitCode = 1;
          } else if (!f.removed) noHost(name);
          else console.log(`removed ${name}${f.stopped.length ? `; recorded stopped: ${f.stopped.map((s) => s.uuid).join(', ')}` : ''}`);
          return;
        }
        const r = await store.hosts.remove(name);
        if (r.servers.length) {
          console.error(
            `${name} still has ${r.servers.length} server(s) placed there (${r.servers.join(', ')}): stop them first, ` +
              'or, if the host is gone for good, remove it with --force (they are recorded stopped)',
          );
          process.exitCode = 1;
        } else if (r.up) {
          console.error(`${name} is up: its agent is alive and would stop at its next heartbeat; stop that agent first (or drain the host)`);
          process.exitCode = 1;
        } else if (!r.removed) noHost(name);
        else console.log(`removed ${name}`);
      }),
    );
}

function noHost(name: string): void {
  console.error(`no host ${name} (see: opensigma hosts list)`);
  process.exitCode = 1;
}
