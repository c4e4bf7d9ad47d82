import { Option, type Command } from 'commander';
import { apiOf, applySets, collect, example, readDefinition, resolve, UUID, withProfile } from './client.ts';
import { UsageError } from './errors.ts';
import type { Api, Json, Query } from './http.ts';
import { printList, printObject, withOutput, type OutputOptions } from './output.ts';
import { waitForJob, withWait, type WaitOptions } from './wait.ts';

/** A resource of the API as the commands see it. */
export interface Kind {
  path: string;
  noun: string;
  /** The table's columns for people. */
  columns: string[];
  /** Named objects can be given by name; the others (ips, subscriptions, jobs) only by their id. */
  named: boolean;
  /** The filters its list takes, as the API's query parameters. */
  filters: Array<'name' | 'tag' | 'status' | 'resource'>;
  /** List from /PATH/detail/ (full objects) rather than /PATH/ (short ones). */
  detail: boolean;
}

export type Opts = OutputOptions & WaitOptions & { profile?: string; set?: string[]; from?: string; name?: string; [k: string]: unknown };

export const kind = (k: Partial<Kind> & Pick<Kind, 'path' | 'noun' | 'columns'>): Kind => ({ named: true, filters: ['name', 'tag'], detail: true, ...k });

export async function idOf(api: Api, k: Kind, ref: string): Promise<string> {
  return k.named ? (await resolve(api, k.path, k.noun, ref)).uuid : encodeURIComponent(ref);
}

const FILTER_HELP = {
  name: 'only those of this exact name',
  tag: 'only those with this tag (uuid or name)',
  status: 'only those in this status',
  resource: 'only this resource type',
};

export function listCommand(group: Command, k: Kind, columns = k.columns): Command {
  const cmd = withOutput(withProfile(group.command('list').alias('ls').description(`list ${k.noun}s`)), true);
  for (const f of k.filters) cmd.option(`--${f} <${f}>`, FILTER_HELP[f]);
  example(cmd, `opensigma ${group.name()} list${k.filters.includes('name') ? ' --name web1' : ''} -o json`);
  return cmd.action(async (opts: Opts) => {
    const api = apiOf(opts);
    const q: Query = {};
    for (const f of k.filters) if (opts[f] !== undefined) q[f] = String(opts[f]);
    // The API's tag filter takes uuids; a tag's name goes through tag__name.
    if (
      q.tag !== undefined &&
      !String(q.tag)
        .split(',')
        .every((x) => UUID.test(x))
    )
      [q.tag__name, q.tag] = [q.tag, undefined];
    printList(await api.list(`/${k.path}/${k.detail ? 'detail/' : ''}`, q), columns, opts);
  });
}

export function getCommand(group: Command, k: Kind): Command {
  const arg = k.named ? 'name-or-uuid' : 'id';
  const cmd = withOutput(withProfile(group.command(`get <${arg}>`).alias('show').description(`show one ${k.noun}`)));
  example(cmd, `opensigma ${group.name()} get ${k.named ? 'NAME' : 'ID'} -o yaml`);
  return cmd.action(async (ref: string, opts: Opts) => {
    const api = apiOf(opts);
    printObject(await api.call('GET', `/${k.path}/${await idOf(api, k, ref)}/`), opts);
  });
}

export function deleteCommand(group: Command, k: Kind): Command {
  const arg = k.named ? 'name-or-uuid' : 'id';
  const cmd = withProfile(group.command(`delete <${arg}...>`).alias('rm').description(`delete ${k.noun}s`));
  example(cmd, `opensigma ${group.name()} delete ${k.named ? 'NAME' : 'ID'}`);
  return cmd.action(async (refs: string[], opts: Opts) => {
    const api = apiOf(opts);
    for (const ref of refs) {
      await api.call('DELETE', `/${k.path}/${await idOf(api, k, ref)}/`);
      console.log(`deleted ${k.noun} ${ref}`);
    }
  });
}

/** create: --from FILE|- for a whole definition, the command's own flags on top of it. */
export function createCommand(
  group: Command,
  k: Kind,
  flags: (cmd: Command) => Command,
  fill: (api: Api, body: Record<string, unknown>, opts: Opts) => Promise<void> | void,
  ex: string,
  after: (api: Api, made: Json, opts: Opts) => Promise<unknown> = async (_a, made) => made,
): Command {
  const cmd = withOutput(withProfile(group.command('create').description(`create a ${k.noun}`)));
  flags(cmd);
  cmd.option('--from <file>', 'a JSON definition (a file, or - for standard input); the flags override it');
  example(cmd, ex);
  return cmd.action(async (opts: Opts) => {
    const api = apiOf(opts);
    const body = opts.from ? await readDefinition(opts.from) : {};
    await fill(api, body, opts);
    const made = await api.call('POST', `/${k.path}/`, { objects: [body] });
    printObject(await after(api, made?.objects?.[0] ?? made, opts), opts);
  });
}

/** edit: the object as it is, with --from, --set and the command's flags over it, PUT back (the API takes whole objects). */
type Fill = (api: Api, body: Record<string, unknown>, opts: Opts) => Promise<void> | void;

export function editCommand(group: Command, k: Kind, flags: (cmd: Command) => Command = (c) => c, fill: Fill = () => {}): Command {
  const arg = k.named ? 'name-or-uuid' : 'id';
  const cmd = withOutput(withProfile(group.command(`edit <${arg}>`).description(`change a ${k.noun}`)));
  flags(cmd);
  cmd.option('--set <field=value>', 'set a field (dotted paths reach inside: meta.role=web); repeatable', collect);
  cmd.option('--from <file>', 'JSON fields to change (a file, or - for standard input)');
  example(cmd, `opensigma ${group.name()} edit ${k.named ? 'NAME' : 'ID'} --set meta.owner=ops`);
  return cmd.action(async (ref: string, opts: Opts) => {
    const api = apiOf(opts);
    const id = await idOf(api, k, ref);
    const body = { ...(await api.call('GET', `/${k.path}/${id}/`)), ...(opts.from ? await readDefinition(opts.from) : {}) };
    applySets(body, opts.set);
    await fill(api, body, opts);
    printObject(await api.call('PUT', `/${k.path}/${id}/`, body), opts);
  });
}

const nameFlag = (cmd: Command) => cmd.option('--name <name>', 'its name');
const setName = (_api: Api, body: Record<string, unknown>, opts: Opts) => {
  if (opts.name !== undefined) body.name = opts.name;
};

/** The groups for the smaller resources: the same verbs, built from their Kind. */
export function registerResources(program: Command): void {
  const ips = kind({ path: 'ips', noun: 'IP', columns: ['uuid', 'server', 'subscription.id', 'tags'], named: false, filters: ['tag'] });
  const g1 = program.command('ips').description('public IPv4 addresses (bought as ip subscriptions)');
  listCommand(g1, ips);
  getCommand(g1, ips);
  editCommand(g1, ips);

  const vlans = kind({ path: 'vlans', noun: 'VLAN', columns: ['uuid', 'meta.name', 'servers', 'subscription.id', 'tags'], named: false, filters: ['tag'] });
  const g2 = program.command('vlans').description('private networks (bought as vlan subscriptions)');
  listCommand(g2, vlans);
  getCommand(g2, vlans);
  editCommand(g2, vlans);

  const subs = kind({
    path: 'subscriptions',
    noun: 'subscription',
    columns: ['id', 'resource', 'amount', 'period', 'status', 'end_time', 'auto_renew'],
    named: false,
    filters: ['status', 'resource'],
    detail: false,
  });
  const g3 = program.command('subscriptions').alias('subs').description('subscriptions: ip, vlan, cpu, mem, ...');
  listCommand(g3, subs);
  getCommand(g3, subs);
  createCommand(
    g3,
    subs,
    (c) =>
      c
        .option('--resource <type>', 'ip, vlan, cpu, mem, dssd, ...')
        .option('--amount <n>', 'how many (bytes for mem and storage; 1G works)')
        .option('--period <period>', 'e.g. 1 month, 1 year'),
    (_api, body, opts) => {
      if (opts.resource !== undefined) body.resource = opts.resource;
      if (opts.amount !== undefined) body.amount = /^\d+$/.test(String(opts.amount)) ? Number(opts.amount) : String(opts.amount);
      if (opts.period !== undefined) body.period = opts.period;
      if (!body.resource) throw new UsageError('give --resource (or a definition with --from)');
    },
    "opensigma subscriptions create --resource ip --amount 1 --period '1 month'",
  );

  const keys = kind({ path: 'keypairs', noun: 'keypair', columns: ['uuid', 'name', 'fingerprint'] });
  const g4 = program.command('keypairs').alias('keys').description('SSH key pairs offered to servers');
  listCommand(g4, keys);
  getCommand(g4, keys);
  createCommand(
    g4,
    keys,
    (c) => nameFlag(c).option('--public-key <file>', 'an OpenSSH public key file (without it a key pair is generated)'),
    async (api, body, opts) => {
      setName(api, body, opts);
      if (opts.publicKey) body.public_key = (await import('node:fs')).readFileSync(String(opts.publicKey), 'utf8').trim();
    },
    'opensigma keypairs create --name laptop --public-key ~/.ssh/id_ed25519.pub',
  );
  editCommand(g4, keys, nameFlag, setName);
  deleteCommand(g4, keys);

  const tags = kind({ path: 'tags', noun: 'tag', columns: ['uuid', 'name', 'resources'], filters: ['name'] });
  const g5 = program.command('tags').description('tags grouping servers, drives, IPs and VLANs');
  listCommand(g5, tags);
  getCommand(g5, tags);
  const tagFlags = (c: Command) => nameFlag(c).option('--resource <uuid>', 'a resource to tag (repeatable)', collect);
  const tagFill = (api: Api, body: Record<string, unknown>, opts: Opts) => {
    setName(api, body, opts);
    if (opts.resource) body.resources = (opts.resource as string[]).map((uuid) => ({ uuid }));
  };
  createCommand(g5, tags, tagFlags, tagFill, 'opensigma tags create --name web --resource SERVER_UUID');
  editCommand(g5, tags, tagFlags, tagFill);
  deleteCommand(g5, tags);

  const acls = kind({ path: 'acls', noun: 'ACL', columns: ['uuid', 'name', 'owner', 'rules'], filters: ['name'] });
  const g6 = program.command('acls').description('access control lists: share with other accounts');
  listCommand(g6, acls);
  getCommand(g6, acls);
  createCommand(g6, acls, nameFlag, setName, 'opensigma acls create --from acl.json');
  editCommand(g6, acls, nameFlag, setName);
  deleteCommand(g6, acls);

  const snaps = kind({ path: 'snapshots', noun: 'snapshot', columns: ['uuid', 'name', 'drive', 'status', 'timestamp'], filters: ['name', 'tag', 'status'] });
  const g7 = program.command('snapshots').alias('snaps').description('drive snapshots');
  listCommand(g7, snaps);
  getCommand(g7, snaps);
  createCommand(
    g7,
    snaps,
    (c) => nameFlag(c).option('--drive <name-or-uuid>', 'the drive to snapshot'),
    async (api, body, opts) => {
      setName(api, body, opts);
      if (opts.drive) body.drive = (await resolve(api, 'drives', 'drive', String(opts.drive))).uuid;
      if (!body.drive) throw new UsageError('give --drive (or a definition with --from)');
    },
    'opensigma snapshots create --drive data1 --name before-upgrade',
  );
  editCommand(g7, snaps, nameFlag, setName);
  deleteCommand(g7, snaps);

  const jobColumns = ['uuid', 'operation', 'state', 'data.progress', 'created', 'last_modified'];
  const jobs = kind({ path: 'jobs', noun: 'job', columns: jobColumns, named: false, filters: [] });
  const g8 = program.command('jobs').description('asynchronous operations and their progress');
  listCommand(g8, jobs);
  getCommand(g8, jobs);
  const jw = withWait(withProfile(g8.command('wait <uuid>').description('wait until a job ends (exit 1 unless it succeeds)')), 'it ends');
  example(jw, 'opensigma jobs wait JOB_UUID --timeout 10m');
  jw.action(async (uuid: string, opts: Opts) => {
    const job = await waitForJob(apiOf(opts), encodeURIComponent(uuid), `job ${uuid}`, opts.timeout);
    console.log(`job ${uuid}: ${job.state}`);
  });

  const logs = program.command('logs').description('the audit log of the account');
  const ll = withOutput(withProfile(logs.command('list').alias('ls').description('audit log entries, newest first')), true);
  ll.addOption(new Option('--limit <n>', 'how many entries (0 = all)').default('50'));
  ll.option('--resource <uuid>', 'only those about this resource')
    .option('--category <category>', 'only this category (servers, drives, ...)')
    .option('--action <action>', 'only this action');
  example(ll, 'opensigma logs list --category servers --limit 10');
  ll.action(async (opts: Opts) => {
    const api = apiOf(opts);
    const q = { limit: String(opts.limit), uuid: opts.resource as string, category: opts.category as string, action: opts.action as string };
    const r = await api.call('GET', '/logs/', undefined, q);
    printList(r?.objects ?? [], ['timestamp', 'category', 'action', 'uuid', 'success', 'error_message'], opts);
  });

  const fw = kind({ path: 'fwpolicies', noun: 'firewall policy', columns: ['uuid', 'name', 'rules', 'servers'] });
  const g9 = program.command('fwpolicies').alias('fw').description('firewall policies');
  listCommand(g9, fw);
  getCommand(g9, fw);
  createCommand(g9, fw, nameFlag, setName, 'opensigma fwpolicies create --name web --from policy.json');
  deleteCommand(g9, fw);

  single(program, 'capabilities', '/capabilities/', 'what this cloud offers: limits of cpu, mem, ...', 'opensigma capabilities -o json');
  single(program, 'usage', '/currentusage/', 'what the account holds now against its subscriptions', 'opensigma usage -o yaml');

  const profile = program.command('profile').description("the account's profile");
  const pg = withOutput(withProfile(profile.command('get', { isDefault: true }).alias('show').description('show the profile')));
  example(pg, 'opensigma profile get --fields email,clone_naming');
  pg.action(async (opts: Opts) => printObject(await apiOf(opts).call('GET', '/profile/'), opts));
  const pe = withOutput(withProfile(profile.command('edit').description('change the profile')));
  pe.option('--set <field=value>', 'set a field; repeatable', collect).option('--from <file>', 'JSON fields to change (a file, or - for standard input)');
  example(pe, 'opensigma profile edit --set clone_naming=COUNTER');
  pe.action(async (opts: Opts) => {
    const api = apiOf(opts);
    const body = { ...(await api.call('GET', '/profile/')), ...(opts.from ? await readDefinition(opts.from) : {}) };
    applySets(body, opts.set);
    printObject(await api.call('PUT', '/profile/', body), opts);
  });
}

/** A resource that is one object per account. */
function single(program: Command, name: string, path: string, description: string, ex: string): void {
  const cmd = withOutput(withProfile(program.command(name).description(description)));
  example(cmd, ex);
  cmd.action(async (opts: Opts) => printObject(await apiOf(opts).call('GET', path), opts));
}
