import type { Command } from 'commander';
import type { Config } from '../config.ts';
import { statePlaces, type StatePlaces } from '../store/states.ts';
import { openStore, STORE_SETTINGS, withSettings } from './settings.ts';
import { CliError } from './errors.ts';

export { statePlaces };

const PLACES = ['OPENSIGMA_STORAGE_DIR', 'OPENSIGMA_REMOTE_SNAPSHOT_DIR', 'OPENSIGMA_ADMIN_EMAIL'];

/** `opensigma state save|load|list|delete|reset`: what a test harness uses between runs. */
export function registerStateCommands(program: Command): void {
  const state = program.command('state').description('save, load and reset the whole installation (database rows and drive bytes), for test clouds');
  state.addHelpText('after', '\nExample:\n  $ opensigma state save clean && opensigma state load clean');
  const withStore = (name: string, desc: string) =>
    withSettings(state.command(name).description(desc), [...STORE_SETTINGS, ...PLACES]).addHelpText(
      'after',
      `\nExample:\n  $ opensigma state ${name.split(' ')[0]}${name.includes('<') ? ' clean' : ''} --data ./data`,
    );
  const act = async (
    opts: Record<string, unknown>,
    fn: (s: Awaited<ReturnType<typeof openStore>>['store'], places: StatePlaces, config: Config) => Promise<string>,
  ) => {
    const { config, store } = await openStore(opts);
    const states = await import('../store/states.ts');
    try {
      console.log(await fn(store, statePlaces(config), config));
    } catch (e) {
      if (e instanceof states.StateError) throw new CliError(e.message);
      throw e;
    } finally {
      await store.close();
    }
  };
  withStore('save <name>', 'save every object and drive byte as NAME (replacing a state of that name)').action((name: string, opts) =>
    act(opts, async (store, places) => {
      const t = Date.now();
      const s = await (await import('../store/states.ts')).saveState(store, places, name);
      return `saved ${s.name}: ${s.rows} rows, ${(s.bytes / 2 ** 20).toFixed(1)} MiB, ${((Date.now() - t) / 1000).toFixed(2)} s`;
    }),
  );
  withStore('load <name>', 'replace every object and drive byte by the state NAME; users are those of the state').action((name: string, opts) =>
    act(opts, async (store, places) => {
      const t = Date.now();
      const s = await (await import('../store/states.ts')).loadState(store, places, name);
      return `loaded ${s.name} (saved ${s.saved}): ${((Date.now() - t) / 1000).toFixed(2)} s`;
    }),
  );
  withStore('list', 'list the saved states').action((opts) =>
    act(opts, async (_store, places) =>
      (await import('../store/states.ts'))
        .listStates(places)
        .map((s) => `${s.name}\t${s.saved}\t${s.rows} rows\t${(s.bytes / 2 ** 20).toFixed(1)} MiB`)
        .join('\n'),
    ),
  );
  withStore('delete <name>', 'delete the saved state NAME').action((name: string, opts) =>
    act(opts, async (_store, places) => {
      await (await import('../store/states.ts')).deleteState(places, name);
      return `deleted ${name}`;
    }),
  );
  withStore('reset', 'delete every object and drive byte; users, their passwords and tokens stay')
    .option('--all', 'also delete every user but the admin (OPENSIGMA_ADMIN_EMAIL, else admin@localhost)')
    .action((opts) =>
      act(opts, async (store, places, config) => {
        await (await import('../store/states.ts')).resetState(store, places, { all: opts.all === true, keepUser: config.adminEmail ?? 'admin@localhost' });
        return opts.all ? `reset: empty, only ${config.adminEmail ?? 'admin@localhost'} left` : 'reset: empty, users kept';
      }),
    );
}
