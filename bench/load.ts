import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface LoadResult {
  reqPerSec: number;
  p99: number;
  non2xx: number;
  total: number;
  /** CPU the server spent per request (ms): what the figure would be on a free core, whatever else runs. */
  cpuMsPerReq: number;
}

/** One kind of request the connections send in turn. */
export interface LoadRequest {
  method: string;
  /** the path; `{uuid}` in it is replaced by one of `uuids`: a random one, or with `own` the thread's own in turn */
  path: string;
  body?: string;
}

export interface LoadSpec {
  url: string;
  durationS: number;
  connections?: number;
  headers?: Record<string, string>;
  /** Requests sent in turn; a single GET of `url` when absent. */
  requests?: LoadRequest[];
  /** what `{uuid}` stands for */
  uuids?: string[];
  /**
   * Each thread works through its own slice of `uuids`, one server a turn of `requests` (start then stop of the
   * same server), rather than a random one per request.
   */
  own?: boolean;
}

/**
 * The load generator is wrk (Debian's package), not a Node client: on 2 cores a Node load generator takes a core
 * itself, and the figures then measure it. A small Lua script gives wrk the requests and prints the summary as JSON.
 */
const THREADS = 2;
const threadsFor = (spec: LoadSpec) => Math.min(THREADS, spec.connections ?? 50);

const lua = (spec: LoadSpec, u: URL, uuidFile: string | null) => {
  const reqs = spec.requests ?? [{ method: 'GET', path: u.pathname + u.search }];
  const q = (s: string) => JSON.stringify(s);
  const headers = { ...(spec.headers ?? {}) };
  return `
local reqs = {${reqs.map((r) => `{method=${q(r.method)}, path=${q(r.path)}, body=${r.body ? q(r.body) : 'nil'}}`).join(', ')}}
local uuids = {}
${uuidFile ? `for line in io.lines(${q(uuidFile)}) do uuids[#uuids + 1] = line end` : ''}
local own = ${spec.own ? 'true' : 'false'}
local n = 0
-- a global: setup() runs in wrk's main state and thread:set() gives each thread's state its own
id = 0
function setup(thread)
  thread:set("id", id)
  id = id + 1
end
function init(args)
  math.randomseed(os.time() + id)
end
${Object.entries(headers)
  .map(([k, v]) => `wrk.headers[${q(k)}] = ${q(v)}`)
  .join('\n')}
function request()
  local r = reqs[(n % #reqs) + 1]
  local turn = math.floor(n / #reqs)
  n = n + 1
  local p = r.path
  if #uuids > 0 then
    local u
    if own then
      local per = math.max(1, math.floor(#uuids / ${threadsFor(spec)}))
      u = uuids[(id * per) + (turn % per) + 1] or uuids[1]
    else
      u = uuids[math.random(#uuids)]
    end
    p = string.gsub(p, "{uuid}", u)
  end
  -- wrk.format uses the headers it is given instead of wrk.headers: a body's request carries both
  local h = nil
  if r.body then
    h = {["Content-Type"] = "application/json"}
    for k, v in pairs(wrk.headers) do h[k] = v end
  end
  return wrk.format(r.method, p, h, r.body)
end
function done(summary, latency, requests)
  io.write(string.format('\\nWRKJSON {"requests": %d, "duration_us": %d, "p99_us": %d, "status_errors": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
`;
};

async function wrk(spec: LoadSpec, durationS: number): Promise<{ requests: number; durationUs: number; p99Us: number; statusErrors: number }> {
  const u = new URL(spec.url);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opensigma-wrk-'));
  try {
    let uuidFile: string | null = null;
    if (spec.uuids?.length) {
      uuidFile = path.join(dir, 'uuids');
      fs.writeFileSync(uuidFile, spec.uuids.join('\n') + '\n');
    }
    const script = path.join(dir, 'load.lua');
    fs.writeFileSync(script, lua(spec, u, uuidFile));
    // wrk wants at least one connection per thread: the one-connection row runs one thread.
    const args = [
      '-t',
      String(threadsFor(spec)),
      '-c',
      String(spec.connections ?? 50),
      '-d',
      `${durationS}s`,
      '--timeout',
      '10s',
      '-s',
      script,
      `${u.protocol}//${u.host}/`,
    ];
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      p.stdout.on('data', (d) => (text += d));
      p.stderr.on('data', (d) => (text += d));
      p.on('error', (e) => reject(new Error(`wrk could not run (apt-get install wrk): ${e.message}`)));
      p.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`))));
    });
    const m = /WRKJSON (\{.*\})/.exec(out);
    if (!m) throw new Error(`wrk printed no summary: ${out}`);
    const j = JSON.parse(m[1]!) as { requests: number; duration_us: number; p99_us: number; status_errors: number };
    return { requests: j.requests, durationUs: j.duration_us, p99Us: j.p99_us, statusErrors: j.status_errors };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One wrk run after a warm-up: requests per second, the 99th percentile latency in ms, and the server's CPU per request. */
export async function load(spec: LoadSpec, cpuSeconds: () => number = () => NaN): Promise<LoadResult> {
  // Warm-up first (JIT, caches, the first slow password check), not measured.
  await wrk(spec, Math.min(2, spec.durationS));
  const cpu0 = cpuSeconds();
  const r = await wrk(spec, spec.durationS);
  const cpu = cpuSeconds() - cpu0;
  return {
    reqPerSec: r.requests / (r.durationUs / 1e6),
    p99: r.p99Us / 1000,
    non2xx: r.statusErrors,
    total: r.requests,
    cpuMsPerReq: (cpu * 1000) / Math.max(1, r.requests),
  };
}
