import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, startServer } from './helpers/harness.ts';

const B = { email: 'b@example.com', password: 'b-secret-password-42' };
const PRIVATE = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  '-----END OPENSSH PRIVATE KEY-----',
  '',
].join('\n');
const PUB = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVhZXhhbXBsZWtleWV4YW1wbGVrZXlleGFtcGxlayB0 a@b';

test('the request log keeps requests and answers with every secret redacted, per account and as HAR', async () => {
  const t = await startServer({ OPENSIGMA_REQUEST_LOG: '100' });
  try {
    await t.running.svc.store.users.create(B.email, B.password);
    const asB = t.as(B.email, B.password);
    // Basic auth, a keypair with a private key, a server with a VNC password.
    assert.equal((await asB('GET', '/tags/')).status, 200);
    const kp = await asB('POST', '/keypairs/', { objects: [{ name: 'k', public_key: PUB, private_key: PRIVATE }] });
    assert.ok(kp.status < 300, kp.text);
    const srv = await asB('POST', '/servers/', { name: 's', cpu: 1000, mem: 536870912, vnc_password: 'vnc-secret-77' });
    assert.equal(srv.status, 201);
    // A cookie session: the password in the body, the session in Set-Cookie, then Cookie and X-CSRFToken.
    const body = JSON.stringify({ username: B.email, password: B.password });
    const login = await fetch(`${t.api}/accounts/action/?do=login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(login.status, 200);
    const sid = /sessionid=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!;
    const csrf = (await login.json().catch(() => ({}))) as { csrf_token?: string };
    const viaCookie = await fetch(`${t.api}/tags/`, { headers: { cookie: `sessionid=${sid}`, 'x-csrftoken': csrf.csrf_token ?? 'none' } });
    assert.equal(viaCookie.status, 200);

    // A drive upload and download: recorded, without their bytes.
    const auth = `Basic ${Buffer.from(`${B.email}:${B.password}`).toString('base64')}`;
    const bytes = Buffer.alloc(1 << 20, 7);
    const raw = { authorization: auth, 'content-type': 'application/octet-stream' };
    const up = await fetch(`${t.api}/drives/upload/x.raw`, { method: 'POST', headers: raw, body: bytes });
    const driveUuid = (await up.text()).trim();
    assert.equal(up.status, 201);
    const down = await fetch(`${t.api}/drives/${driveUuid}/download/`, { headers: { authorization: auth, range: 'bytes=0-65535' } });
    assert.equal((await down.arrayBuffer()).byteLength, 65536);

    // Not for anyone else, and not anonymously.
    assert.equal((await fetch(`${t.api}/opensigma/requests/`)).status, 401);
    const no = await asB('GET', '/opensigma/requests/');
    assert.equal(no.status, 403);
    assert.equal(no.body[0].error_type, 'permission');

    const all = await t.call('GET', '/opensigma/requests/');
    assert.equal(all.status, 200);
    const mine = await t.call('GET', `/opensigma/requests/?account=${encodeURIComponent(B.email)}`);
    assert.ok(mine.body.objects.length >= 4, JSON.stringify(mine.body.objects.map((e: any) => [e.method, e.url, e.account])));
    assert.ok(mine.body.objects.every((e: any) => e.account === mine.body.objects[0].account && e.account));
    const keypairPost = mine.body.objects.find((e: any) => e.method === 'POST' && e.url.startsWith('/api/2.0/keypairs/'));
    assert.equal(JSON.parse(keypairPost.request.body.text).objects[0].private_key, '[redacted]');
    assert.equal(keypairPost.request.headers.authorization, '[redacted]');
    assert.equal(keypairPost.response.status, kp.status);
    assert.equal((await t.call('GET', '/opensigma/requests/?limit=2')).body.objects.length, 2);
    const upload = mine.body.objects.find((e: any) => e.url.startsWith('/api/2.0/drives/upload/'));
    assert.equal(upload.request.body.streamed, true);
    assert.equal(upload.request.body.text, null);
    const download = mine.body.objects.find((e: any) => e.url.endsWith('/download/'));
    assert.equal(download.response.status, 206);
    assert.equal(download.response.body.streamed, true);
    assert.ok(all.text.length < bytes.length, 'no drive bytes kept');

    const har = await t.call('GET', '/opensigma/requests/?format=har');
    assert.equal(har.status, 200);
    const parsed = JSON.parse(har.text);
    assert.equal(parsed.log.version, '1.2');
    assert.ok(parsed.log.entries.length >= 5, `${parsed.log.entries.length} entries`);
    const e = parsed.log.entries.find((x: any) => x.request.url.includes('/servers/') && x.request.method === 'POST');
    assert.equal(e.response.status, 201);
    assert.ok(Array.isArray(e.request.headers), 'headers');
    assert.match(e.request.postData.text, /"name":"s"/);

    const basic = (email: string, pw: string) => Buffer.from(`${email}:${pw}`).toString('base64');
    const secrets = [B.password, ADMIN.password, PRIVATE.split('\n')[1]!, 'vnc-secret-77', sid, basic(B.email, B.password), basic(ADMIN.email, ADMIN.password)];
    if (csrf.csrf_token) secrets.push(csrf.csrf_token);
    for (const text of [all.text, mine.text, har.text]) for (const s of secrets) assert.ok(!text.includes(s), `a secret is in the log: ${s.slice(0, 6)}…`);
  } finally {
    await t.close();
  }
});

test('the request log is off by default', async () => {
  const t = await startServer();
  try {
    const r = await t.call('GET', '/opensigma/requests/');
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('x-opensigma-error-code'), 'OS_ERR_INVALID');
    assert.match(r.body[0].error_message, /OPENSIGMA_REQUEST_LOG/, 'it names the setting that turns it on');
  } finally {
    await t.close();
  }
});
