import { example } from './client.ts';
import type { Command } from 'commander';
import type { Config } from '../config.ts';
import { registerHostCommands, type CliContext } from './hosts.ts';

export interface OperatorContext extends CliContext {
  /** The configuration the flags and environment give; throws on a bad setting. */
  config(opts: Record<string, unknown>): Config;
  /** every setting's flag, for commands that check them all (doctor) */
  withAllSettings(cmd: Command): Command;
}

const MARK = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

/** The commands an operator runs on a node: hosts, doctor, backup. */
export function registerOperatorCommands(program: Command, ctx: OperatorContext): void {
  registerHostCommands(program, ctx);

  ctx
    .withAllSettings(
      example(
        program.command('doctor').description("check this node's configuration and say what is wrong (exit 1 if anything fails)"),
        'opensigma doctor --data /var/lib/opensigma',
      ),
    )
    .action(async (opts) => {
      let config: Config;
      try {
        config = ctx.config(opts);
      } catch (e) {
        console.log(`${MARK.fail}  configuration        ${(e as Error).message}`);
        process.exitCode = 1;
        return;
      }
      const { doctor } = await import('./doctor.ts');
      const checks = await doctor(config);
      for (const c of checks) console.log(`${MARK[c.verdict]}  ${c.name.padEnd(19)}  ${c.detail}`);
      const failed = checks.filter((c) => c.verdict === 'fail').length;
      console.log(failed ? `\n${failed} check(s) failed` : '\nthis node looks right');
      if (failed) process.exitCode = 1;
    });

  ctx
    .withSettings(
      example(
        program.command('backup <dest>').description('copy a running SQLite installation (database and drive images) into a new directory'),
        'opensigma backup /var/backups/opensigma-$(date +%F) --data /var/lib/opensigma',
      ),
    )
    .action(async (dest: string, opts) => {
      const config = ctx.config(opts);
      if (config.databaseUrl) {
        console.error(
          'opensigma backup copies SQLite installations; ' +
            "with PostgreSQL back up the database with pg_dump and OPENSIGMA_STORAGE_DIR with your storage's snapshots",
        );
        process.exitCode = 2;
        return;
      }
      const { backupSqlite } = await import('./backup.ts');
      try {
        const r = await backupSqlite(config, dest);
        console.log(`backup of ${config.dataDir} in ${r.dest}: began ${r.began}, took ${r.seconds.toFixed(1)} s`);
        console.log(`  database: ${r.pages} pages, integrity_check ${r.integrity}`);
        console.log(`  images: ${r.images} (${(r.bytes / 2 ** 20).toFixed(1)} MiB on disk)`);
        if (r.gone.length) console.log(`  deleted while the backup ran (their rows stay, without bytes): ${r.gone.join(', ')}`);
        console.log(`restore: stop the node, then serve from the copy: OPENSIGMA_DATA=${r.dest} npx opensigma serve`);
        if (r.integrity !== 'ok') process.exitCode = 1;
      } catch (e) {
        console.error(`opensigma backup: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
