/**
 * The web console in Debian's Chromium against a real `opensigma serve` (sim driver, SQLite) whose account holds 1,000
 * servers: what the first page weighs, how long the server list takes to draw, and how soon a start shows as running
 * in an open page. Each figure beside a baseline of the same run. Run alone: node --import tsx bench/web.ts
 * (or npm run bench -- --web).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import { chromium, type Page } from 'playwright-core';
import { seedServers } from './seed.ts';
import { startOpensigma } from './processes.ts';

const CHROMIUM = '/usr/bin/chromium';
const EMAIL = 'bench@example.com';
const PASSWORD = 'bench-password';
const AUTH = `Basic ${Buffer.from(`${EMAIL}:${PASSWORD}`).toString('base64')}`;
const SERVERS = 1000;
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'];

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

export interface WebFigures {
  rows: Array<[string, string, string, string]>;
  notes: string[];
}

async function until(f: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function status(api: string, uuid: string): Promise<string> {
  return (await (await fetch(`${api}/servers/${uuid}/`, { headers: { authorization: AUTH } })).json()).status;
}

async function act(api: string, uuid: string, action: string): Promise<void> {
  const r = await fetch(`${api}/servers/${uuid}/action/?do=${action}`, { method: 'POST', headers: { authorization: AUTH } });
  if (!r.ok) throw new Error(`${action}: ${r.status} ${await r.text()}`);
}

/** A bare websocket client of the account: the time from the start's POST to the frame saying running. */
async function wsStartDelay(api: string, uuid: string): Promise<number> {
  const r = await fetch(`${api}/accounts/action/?do=authenticate_asynchronous`, { method: 'POST', headers: { authorization: AUTH } });
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  const ws = new WebSocket(`${api.replace(/^http/, 'ws').replace(/\/api\/2\.0$/, '')}/websocket`, { headers: { cookie } });
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  try {
    const running = new Promise<number>((res) =>
      ws.on('message', (m) => {
        const f = JSON.parse(m.toString());
        if (f.object?.uuid === uuid && f.object.status === 'running') res(performance.now());
      }),
    );
    const t0 = performance.now();
    await act(api, uuid, 'start');
    return (await running) - t0;
  } finally {
    ws.close();
  }
}

/** The same in the page: from the click on Start to the status text saying running, both timed by the page's clock. */
async function pageStartDelay(page: Page, base: string, uuid: string): Promise<number> {
  await page.goto(`${base}/#/servers/${uuid}`);
  await page.getByTestId('server-status').getByText('stopped', { exact: true }).waitFor();
  await page.getByRole('button', { name: 'Start', exact: true }).waitFor();
  // The page hears of changes once its websocket is open; a click before that would time its catching up instead.
  await page.waitForFunction(() => document.body.dataset.live === 'yes');
  return page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        const el = document.querySelector('[data-testid="server-status"]')!;
        let t0 = 0;
        const watch = new MutationObserver(() => {
          const now = document.querySelector('[data-testid="server-status"]');
          if (now?.textContent === 'running') {
            watch.disconnect();
            resolve(performance.now() - t0);
          }
        });
        watch.observe(el.closest('section') ?? document.body, { subtree: true, childList: true, characterData: true });
        const start = [...document.querySelectorAll('button')].find((b) => b.textContent === 'Start')!;
        t0 = performance.now();
        start.click();
      }),
  );
}

export async function benchWeb(runs = 10): Promise<WebFigures | null> {
  if (!fs.existsSync(CHROMIUM)) {
    say(`${CHROMIUM} is not installed: no web console figures`);
    return null;
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-bench-web-'));
  say(`web console: seeding ${SERVERS} servers`);
  const uuids = await seedServers(dataDir, EMAIL, PASSWORD, SERVERS);
  const unlimited = { OPENSIGMA_RATE_GET: '1000000000', OPENSIGMA_RATE_POST: '1000000000', OPENSIGMA_RATE_PUT: '1000000000' };
  const env = { OPENSIGMA_ADMIN_EMAIL: EMAIL, OPENSIGMA_ADMIN_PASSWORD: PASSWORD, OPENSIGMA_SIM_DELAY_MS: '0', OPENSIGMA_LOG_LEVEL: 'warn', ...unlimited };
  const proc = await startOpensigma(dataDir, env);
  const api = proc.url;
  const base = api.replace(/\/api\/2\.0$/, '');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();

    say('web console: the first page');
    // What the first page loads, as the browser asked for it (it sends Accept-Encoding: gzip), before signing in.
    const bodies: Array<{ url: string; raw: number }> = [];
    page.on('response', (r) => {
      if (r.url().startsWith(base))
        void r.body().then(
          (b) => bodies.push({ url: r.url(), raw: b.length }),
          () => {},
        );
    });
    await page.goto(`${base}/`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.waitForLoadState('networkidle');
    page.removeAllListeners('response');
    let raw = 0;
    let gz = 0;
    for (const b of bodies) {
      const bytes = Buffer.from(await (await fetch(b.url)).arrayBuffer());
      raw += bytes.length;
      gz += zlib.gzipSync(bytes).length;
    }
    const served = bodies.map((b) => new URL(b.url).pathname).join(', ');

    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Servers' }).waitFor();

    say(`web console: navigation to the server list, ${runs} times`);
    const drawn: number[] = [];
    const blank: number[] = [];
    const fetched: number[] = [];
    for (let i = 0; i < runs; i++) {
      await page.goto('about:blank');
      let t0 = performance.now();
      await page.goto(`${base}/#/servers`);
      await page.locator('tr[data-uuid]').nth(19).waitFor();
      drawn.push(performance.now() - t0);
      // The same navigation to a page with nothing in it: what any page costs here, before the console's own work.
      await page.goto('about:blank');
      t0 = performance.now();
      await page.goto(`${base}/healthz`);
      blank.push(performance.now() - t0);
      await page.goto(`${base}/#/servers`);
      await page.locator('tr[data-uuid]').nth(19).waitFor();
      fetched.push(
        await page.evaluate(async () => {
          const t = performance.now();
          const r = await fetch('/api/2.0/servers/detail/?limit=20&offset=0', { headers: { 'x-requested-with': 'XMLHttpRequest' } });
          await r.json();
          return performance.now() - t;
        }),
      );
    }
    const total = await page.locator('.pager').innerText();
    if (!/of 1000/.test(total)) throw new Error(`the list does not show 1,000 servers: ${total}`);

    say(`web console: start -> running, ${runs} times in the page and ${runs} through a bare websocket`);
    const inPage: number[] = [];
    const overWs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const a = uuids[i]!;
      inPage.push(await pageStartDelay(page, base, a));
      await page.goto('about:blank');
      const b = uuids[runs + i]!;
      overWs.push(await wsStartDelay(api, b));
      for (const u of [a, b]) {
        await until(async () => (await status(api, u)) === 'running', `${u} running`);
        await act(api, u, 'stop');
      }
    }

    const d = median(drawn);
    return {
      rows: [
        ['first page (sign-in) loads, gzip', kib(gz), `raw ${kib(raw)}`, `${(gz / raw).toFixed(2)} of raw (${served})`],
        [
          `navigation to the server list drawn (${SERVERS} servers, first 20 rows), median`,
          `${d.toFixed(0)} ms`,
          `blank page ${median(blank).toFixed(0)} ms`,
          `${(d / median(blank)).toFixed(1)}x; the list's fetch() in the page ${median(fetched).toFixed(1)} ms`,
        ],
        [
          'start -> running shown in an open page, median',
          `${median(inPage).toFixed(1)} ms`,
          `bare ws client ${median(overWs).toFixed(1)} ms`,
          `${(median(inPage) / median(overWs)).toFixed(2)}x`,
        ],
      ],
      notes: [
        `- ${d < 1000 ? 'met' : 'MISSED'}: server list drawn in under 1 s with ${SERVERS} servers (${d.toFixed(0)} ms median of ${runs})`,
        `(Chromium ${browser.version()}, sim driver with OPENSIGMA_SIM_DELAY_MS=0, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(1)})`,
      ],
    };
  } finally {
    await browser.close();
    await proc.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

export function printWebTable(f: WebFigures | null): void {
  if (!f) return;
  const out = ['', '### Web console (bench/web.ts)', '', '| row | figure | baseline | ratio / note |', '|---|---:|---:|---|'];
  for (const r of f.rows) out.push(`| ${r.join(' | ')} |`);
  out.push('', ...f.notes);
  process.stdout.write(out.join('\n') + '\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) printWebTable(await benchWeb());
