import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN, startServer, type TestServer } from './helpers/harness.ts';
import { CliUser } from './helpers/cli-client.ts';

// The client talks HTTP only, so one database is enough here: the API's own tests cover both stores.
describe('the opensigma client, logged in to a running opensigma', () => {
  let t: TestServer;
  let u: CliUser;
  before(async () => {
    t = await startServer({ OPENSIGMA_SIM_DELAY_MS: '150' });
    u = new CliUser({ COLUMNS: '200' });
  });
  after(async () => {
    u?.cleanup();
    await t?.close();
  });

  test('login checks the password, keeps a 0600 profile; a wrong password keeps nothing and exits 1', async () => {
    const bad = await u.run(['login', t.url, '--user', ADMIN.email, '--password-stdin'], { input: 'wrong\n' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /login to .* failed: .*(error_point|\[)/);
    assert.equal(fs.existsSync(path.join(u.home, 'config', 'opensigma', 'config.json')), false);
    const notLoggedIn = await u.run(['servers', 'list']);
    assert.equal(notLoggedIn.code, 2);
    assert.match(notLoggedIn.stderr, /not logged in: run opensigma login/);

    const ok = await u.run(['login', t.url, '--user', ADMIN.email, '--password-stdin'], { input: `${ADMIN.password}\n` });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /logged in to http:\/\/127\.0\.0\.1:\d+\/api\/2\.0 as admin@example\.com \(profile default/);
    const file = path.join(u.home, 'config', 'opensigma', 'config.json');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).profiles.default.user, ADMIN.email);
  });

  test('servers: create with flags, list and get in table and json, start/stop/clone --wait, ambiguous names refused', async () => {
    const made = await u.json('servers', 'create', '--name', 'web1', '--cpu', '1500', '--mem', '768M', '--dhcp', '--vnc-password', 'secret12');
    assert.equal(made.name, 'web1');
    assert.equal(made.cpu, 1500);
    assert.equal(made.mem, 768 * 1024 * 1024);
    assert.deepEqual(
      made.nics.map((n: any) => n.ip_v4_conf.conf),
      ['dhcp'],
    );

    const [table, narrow, list, one, picked, yaml] = await Promise.all([
      u.ok('servers', 'list'),
      u.run(['servers', 'list'], { env: { COLUMNS: '40' } }),
      u.json('servers', 'list'),
      u.json('servers', 'get', 'web1'),
      u.json('servers', 'list', '--name', 'web1', '--fields', 'name,status'),
      u.ok('servers', 'get', 'web1', '-o', 'yaml', '--fields', 'name,cpu,nics'),
    ]);
    const [header, row] = table.trimEnd().split('\n');
    assert.match(header!, /^UUID +NAME +STATUS +CPU +MEM +SMP$/);
    assert.match(row!, new RegExp(`^${made.uuid} +web1 +stopped +1500 +768 MiB +1$`));
    for (const l of narrow.stdout.trimEnd().split('\n')) assert.ok(l.length <= 40, `cut to the terminal width: ${l}`);
    assert.match(narrow.stdout, /…/);
    // json is the API's objects exactly
    assert.deepEqual(list, (await t.call('GET', `/servers/detail/?limit=0`)).body.objects);
    assert.deepEqual(one, (await t.call('GET', `/servers/${made.uuid}/`)).body);
    assert.deepEqual(picked, [{ name: 'web1', status: 'stopped' }]);
    const nic = ['- boot_order: null', '  firewall_policy: null', '  ip_v4_conf:', '    conf: dhcp', '    ip: null', '  ip_v6_conf: null'];
    const rest = [`  mac: ${JSON.stringify(made.nics[0].mac)}`, '  model: virtio', '  runtime: null', '  vlan: null'];
    assert.equal(yaml, ['name: web1', 'cpu: 1500', 'nics:', ...nic, ...rest, ''].join('\n'));

    const started = await u.run(['servers', 'start', 'web1', '--wait']);
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.stdout, 'server web1 is running\n');
    assert.equal(started.stderr, '', 'nothing drawn when stdout is not a terminal');
    assert.equal((await t.call('GET', `/servers/${made.uuid}/`)).body.status, 'running');
    assert.match(await u.ok('servers', 'list', '--status', 'running'), /web1 +running/);
    const rt = await u.json('servers', 'runtime', 'web1');
    const apiRt = (await t.call('GET', `/servers/${made.uuid}/runtime/`)).body;
    assert.deepEqual(Object.keys(rt).sort(), Object.keys(apiRt).sort());
    assert.equal(rt.active_since, apiRt.active_since);
    assert.ok(rt.active_since, 'a running server has a runtime');
    assert.equal(await u.ok('servers', 'stop', 'web1', '--wait'), 'server web1 is stopped\n');
    assert.equal((await t.call('GET', `/servers/${made.uuid}/`)).body.status, 'stopped');

    const clone = await u.json('servers', 'clone', 'web1', '--name', 'web1', '--wait');
    assert.equal(clone.status, 'stopped');
    const twice = await u.run(['servers', 'start', 'web1']);
    assert.equal(twice.code, 1);
    const [first, ...listed] = twice.stderr.trimEnd().split('\n');
    assert.equal(first, 'opensigma: 2 servers are named web1; give one of their uuids:');
    assert.deepEqual(listed.sort(), [made.uuid, clone.uuid].map((x) => `  ${x}`).sort());
    const edited = await u.json('servers', 'edit', clone.uuid, '--name', 'web2', '--mem', '1G', '--set', 'meta.role=web');
    assert.equal(edited.name, 'web2');
    assert.equal(edited.mem, 1024 ** 3);
    assert.deepEqual(edited.meta, { role: 'web' });
    assert.equal(await u.ok('servers', 'delete', 'web2'), 'deleted server web2\n');
    assert.equal((await t.call('GET', `/servers/${clone.uuid}/`)).status, 404);
  });

  test('an API error exits 1 with its error_message and error_point; a usage error exits 2; no name matched exits 1', async () => {
    const bad = await u.run(['servers', 'create', '--name', 'tiny', '--cpu', '1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^opensigma: .*cpu.* \(error_point: cpu\) \[validation\]\n$/);
    const running = await u.run(['servers', 'start', 'web1', '--wait']);
    assert.equal(running.code, 0);
    const refused = await u.run(['servers', 'delete', 'web1']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^opensigma: .+\[permission\]\n$/);
    await u.ok('servers', 'stop', 'web1', '--wait');
    const usage = [
      ['servers', 'create', '--name', 'x', '--mem', 'lots'],
      ['servers', 'frobnicate'],
      ['servers', 'list', '--bogus'],
      ['servers', 'list', '-o', 'xml'],
      ['servers', 'start', 'web1', '--wait', '--timeout', 'soon'],
    ];
    for (const args of usage) {
      const r = await u.run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
    }
    const missing = await u.run(['drives', 'get', 'no-such-drive']);
    assert.deepEqual([missing.code, missing.stderr], [1, 'opensigma: no drive named no-such-drive\n']);
    const gone = await u.run(['servers', 'get', '00000000-0000-4000-8000-000000000000']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /\[notexist\]/);
  });

  test('drives and the library: create, resize and clone with --wait, edit, delete; table and json', async () => {
    const d = await u.json('drives', 'create', '--name', 'data1', '--size', '1G', '--wait');
    assert.equal(d.status, 'unmounted');
    assert.equal(d.size, 1024 ** 3);
    assert.match(await u.ok('drives', 'list'), /data1 +unmounted +1 GiB +disk/);
    assert.deepEqual(await u.json('drives', 'list', '--name', 'data1'), (await t.call('GET', '/drives/detail/?name=data1')).body.objects);
    assert.equal((await u.json('drives', 'resize', 'data1', '2G', '--wait')).size, 2 * 1024 ** 3);
    const copy = await u.json('drives', 'clone', 'data1', '--name', 'data2', '--wait');
    assert.equal(copy.status, 'unmounted');
    assert.equal(copy.size, 2 * 1024 ** 3);
    assert.equal((await u.json('drives', 'edit', 'data2', '--set', 'meta.purpose=test')).meta.purpose, 'test');
    assert.equal(await u.ok('drives', 'delete', 'data2'), 'deleted drive data2\n');

    const libs = await u.json('libdrives', 'list');
    assert.ok(libs.length > 0);
    assert.match(await u.ok('libdrives', 'list'), /^UUID +NAME +MEDIA +SIZE +OS +DISTRIBUTION +VERSION\n/);
    const lib = await u.json('libdrives', 'get', libs[0].uuid);
    assert.equal(lib.uuid, libs[0].uuid);
    const mine = await u.json('libdrives', 'clone', libs[0].uuid, '--name', 'from-library', '--wait');
    assert.equal(mine.status, 'unmounted');

    const boot = await u.json('servers', 'create', '--name', 'booted', '--drive', 'from-library');
    assert.deepEqual(
      boot.drives.map((x: any) => [x.drive.uuid, x.boot_order]),
      [[mine.uuid, 1]],
    );
    assert.equal(await u.ok('servers', 'delete', 'booted', '--recurse', 'disks'), 'deleted server booted\n');
  });

  test('the other resources: each list and get in table and json, and their create/edit/delete', async () => {
    const sub = await u.json('subscriptions', 'create', '--resource', 'ip', '--amount', '1', '--period', '1 month');
    assert.equal(sub.resource, 'ip');
    assert.match(await u.ok('subscriptions', 'list'), new RegExp(`^ID +RESOURCE.*\\n${sub.id} +ip +1 +`, 's'));
    assert.equal((await u.json('subscriptions', 'get', String(sub.id))).id, sub.id);
    const ips = await u.json('ips', 'list');
    assert.deepEqual(ips, (await t.call('GET', '/ips/detail/?limit=0')).body.objects);
    assert.ok(ips.length >= 1);
    assert.match(await u.ok('ips', 'list'), new RegExp(`^UUID .*\\n${ips[0].uuid.replace(/\./g, '\\.')} `, 's'));
    assert.equal((await u.json('ips', 'get', ips[0].uuid)).uuid, ips[0].uuid);
    assert.equal((await u.json('ips', 'edit', ips[0].uuid, '--set', 'meta.dns=www')).meta.dns, 'www');
    await u.json('subscriptions', 'create', '--resource', 'vlan', '--amount', '1', '--period', '1 month');
    const vlans = await u.json('vlans', 'list');
    assert.ok(vlans.length >= 1);
    assert.match(await u.ok('vlans', 'get', vlans[0].uuid), /^FIELD +VALUE\n/);

    const key = await u.json('keypairs', 'create', '--name', 'laptop');
    assert.match(key.public_key, /^ssh-rsa /);
    assert.match(await u.ok('keypairs', 'list'), new RegExp(`${key.uuid} +laptop +${key.fingerprint.replace(/[+/]/g, '.')}`));
    assert.equal(await u.ok('keypairs', 'delete', 'laptop'), 'deleted keypair laptop\n');

    const web1 = (await u.json('servers', 'get', 'web1')).uuid;
    const tag = await u.json('tags', 'create', '--name', 'web', '--resource', web1);
    assert.deepEqual(
      tag.resources.map((r: any) => r.uuid),
      [web1],
    );
    assert.deepEqual(
      (await u.json('servers', 'list', '--tag', 'web')).map((s: any) => s.name),
      ['web1'],
    );
    assert.match(await u.ok('tags', 'list'), new RegExp(`${tag.uuid} +web +${web1}`));
    assert.equal((await u.json('tags', 'edit', 'web', '--name', 'www')).name, 'www');
    assert.equal(await u.ok('tags', 'delete', 'www'), 'deleted tag www\n');

    const data1 = (await u.json('drives', 'get', 'data1')).uuid;
    const snap = await u.json('snapshots', 'create', '--drive', 'data1', '--name', 'before');
    assert.equal(snap.drive.uuid, data1);
    assert.match(await u.ok('snapshots', 'list'), new RegExp(`${snap.uuid} +before +${data1}`));
    assert.equal(await u.ok('snapshots', 'delete', 'before'), 'deleted snapshot before\n');

    fs.writeFileSync(path.join(u.home, 'acl.json'), JSON.stringify({ name: 'share', rules: [] }));
    const acl = await u.json('acls', 'create', '--from', path.join(u.home, 'acl.json'));
    assert.equal(acl.name, 'share');
    assert.match(await u.ok('acls', 'list'), new RegExp(`${acl.uuid} +share`));
    assert.equal(await u.ok('acls', 'delete', 'share'), 'deleted ACL share\n');

    // Reads only: two at a time, as the machine has two cores.
    const [jobs, jobTable, logs, logTable] = await Promise.all([
      u.json('jobs', 'list'),
      u.ok('jobs', 'list'),
      u.json('logs', 'list', '--limit', '5'),
      u.ok('logs', 'list', '--category', 'servers', '--limit', '3'),
    ]);
    assert.ok(jobs.length > 0, 'the clones made jobs');
    assert.match(jobTable, /^UUID +OPERATION +STATE +DATA\.PROGRESS/);
    assert.equal(logs.length, 5);
    assert.match(logTable, /^TIMESTAMP +CATEGORY +ACTION/);
    const [job, waited, caps, capTable, usage, profile, profileTable] = await Promise.all([
      u.json('jobs', 'get', jobs[0].uuid),
      u.ok('jobs', 'wait', jobs[0].uuid),
      u.json('capabilities'),
      u.ok('capabilities'),
      u.json('usage'),
      u.json('profile'),
      u.ok('profile', 'get', '--fields', 'email'),
    ]);
    assert.equal(job.uuid, jobs[0].uuid);
    assert.match(waited, /: success\n$/);
    assert.deepEqual(caps, (await t.call('GET', '/capabilities/')).body);
    assert.match(capTable, /^FIELD +VALUE\n/);
    assert.deepEqual(usage, (await t.call('GET', '/currentusage/')).body);
    assert.equal(profile.email, ADMIN.email);
    assert.match(profileTable, /^FIELD +VALUE\nemail +admin@example\.com\n$/);
    assert.equal((await u.json('profile', 'edit', '--set', 'clone_naming=COUNTER')).clone_naming, 'COUNTER');
  });

  test('--profile, OPENSIGMA_URL with a token, and logout', async () => {
    const token = (await t.running.svc.store.users.issueToken((await t.running.svc.store.users.byEmail(ADMIN.email))!.uuid, 'api', null)).token;
    const env = await u.run(['servers', 'list', '-o', 'json', '--fields', 'name'], { env: { OPENSIGMA_URL: t.url, OPENSIGMA_TOKEN: token } });
    assert.equal(env.code, 0, env.stderr);
    assert.deepEqual(JSON.parse(env.stdout), [{ name: 'web1' }]);
    const half = await u.run(['servers', 'list'], { env: { OPENSIGMA_URL: t.url } });
    assert.equal(half.code, 2);
    const { freePort } = await import('./helpers/cli-process.ts');
    const closed = await u.run(['servers', 'list'], { env: { OPENSIGMA_URL: `http://127.0.0.1:${await freePort()}`, OPENSIGMA_TOKEN: token } });
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /^opensigma: cannot reach http:\/\/127\.0\.0\.1:\d+\/api\/2\.0: ECONNREFUSED\n$/);

    assert.equal((await u.run(['login', `${t.api}/`, '--token', token, '--name', 'ci'])).code, 0);
    assert.equal((await u.run(['servers', 'list', '--profile', 'nope'])).code, 2);
    assert.match(await u.ok('servers', 'list', '--profile', 'ci'), /web1/);
    assert.equal(await u.ok('logout', 'ci'), 'removed profile ci\n');
    assert.equal((await u.run(['servers', 'list', '--profile', 'ci'])).code, 2);
    assert.equal((await u.run(['logout', 'ci'])).code, 1);
  });
});
