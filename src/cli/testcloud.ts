import fs from 'node:fs';
import type { Command } from 'commander';
import { apiOf, example, withProfile } from './client.ts';
import { UsageError } from './errors.ts';
import { printList, withOutput, type OutputOptions } from './output.ts';

type Opts = OutputOptions & { profile?: string; [k: string]: unknown };

const num = (v: unknown, what: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${what} must be a number, not ${String(v)}`);
  return n;
};

/** The administrator's levers of a test cloud: fault rules and the request log (docs/test-cloud.md). */
export function registerTestCloud(program: Command): void {
  const faults = program.command('faults').description('admin: inject faults and latency');

  const list = withOutput(withProfile(faults.command('list').alias('ls').description('list the rules set, with how often each fired')), true);
  example(list, 'opensigma faults list -o json');
  list.action(async (opts: Opts) => {
    const r = await apiOf(opts).call('GET', '/opensigma/faults/');
    printList(r.objects, ['id', 'method', 'path', 'status', 'probability', 'latency_ms', 'count', 'fired'], opts);
  });

  const add = withOutput(withProfile(faults.command('add').description('add a rule (or --from FILE of rules)')), true)
    .option('--method <method>', 'GET, POST, PUT, DELETE or * (default *)')
    .option('--path <glob>', 'path glob: * within a segment, ** across them')
    .option('--path-regex <regex>', 'a regular expression over the path instead')
    .option('--account <email>', 'only this account (email or uuid)')
    .option('--query <text>', 'only requests whose query contains this, e.g. do=start')
    .option('--status <code>', 'answer this status (400..599) with an error array')
    .option('--message <text>', 'its error_message')
    .option('--probability <p>', 'fire with this probability, 0..1 (default 1)')
    .option('--latency-ms <ms>', 'delay the answer by this much')
    .option('--count <n>', 'fire at most n times')
    .option('--id <id>', 'the rule id (default: made up)')
    .option('--from <file>', 'a JSON rule, or a list of rules, from FILE or - (standard input)');
  example(add, 'opensigma faults add --method POST --path "/api/2.0/servers/*/action/" --query do=start --status 503 --probability 0.3');
  add.action(async (opts: Opts) => {
    let body: unknown;
    if (opts.from) {
      const text = opts.from === '-' ? fs.readFileSync(0, 'utf8') : readFile(String(opts.from));
      try {
        body = JSON.parse(text);
      } catch (e) {
        throw new UsageError(`${String(opts.from)} is not JSON: ${(e as Error).message}`);
      }
    } else {
      body = Object.fromEntries(
        Object.entries({
          id: opts.id,
          method: opts.method,
          path: opts.path,
          path_regex: opts.pathRegex,
          account: opts.account,
          query: opts.query,
          status: num(opts.status, '--status'),
          error_message: opts.message,
          probability: num(opts.probability, '--probability'),
          latency_ms: num(opts.latencyMs, '--latency-ms'),
          count: num(opts.count, '--count'),
        }).filter(([, v]) => v !== undefined),
      );
    }
    const r = await apiOf(opts).call('POST', '/opensigma/faults/', body);
    printList(r.objects, ['id', 'method', 'path', 'status', 'probability', 'latency_ms', 'count'], opts);
  });

  const remove = withProfile(faults.command('remove <id...>').alias('rm').description('remove rules by id'));
  example(remove, 'opensigma faults remove 3f2a9c1e');
  remove.action(async (ids: string[], opts: Opts) => {
    const api = apiOf(opts);
    for (const id of ids) {
      await api.call('DELETE', `/opensigma/faults/${encodeURIComponent(id)}/`);
      console.log(`removed fault rule ${id}`);
    }
  });

  const clear = withProfile(faults.command('clear').description('remove every rule'));
  example(clear, 'opensigma faults clear');
  clear.action(async (opts: Opts) => {
    await apiOf(opts).call('DELETE', '/opensigma/faults/');
    console.log('removed every fault rule');
  });

  const requests = withOutput(withProfile(program.command('requests').description('admin: the last requests, redacted')), true)
    .option('--account <email>', "only this account's (email or uuid)")
    .option('--limit <n>', 'only the last n')
    .option('--har <file>', 'write them as a HAR 1.2 file (- for standard output)');
  example(requests, 'opensigma requests --account me@example.com --har ci.har');
  requests.action(async (opts: Opts) => {
    const api = apiOf(opts);
    const query = { account: opts.account as string | undefined, limit: opts.limit as string | undefined };
    if (opts.har) {
      const har = await api.call('GET', '/opensigma/requests/', undefined, { ...query, format: 'har' });
      const text = `${JSON.stringify(har, null, 2)}\n`;
      if (opts.har === '-') process.stdout.write(text);
      else {
        fs.writeFileSync(String(opts.har), text);
        console.log(`wrote ${har.log.entries.length} requests to ${String(opts.har)}`);
      }
      return;
    }
    const r = await api.call('GET', '/opensigma/requests/', undefined, query);
    printList(r.objects, ['started', 'method', 'url', 'response.status', 'duration_ms', 'account'], opts);
  });
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
