import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import { apiOf, example, parseSize, resolve, withProfile } from './client.ts';
import { ApiError, CliError, UsageError } from './errors.ts';
import type { Api, Json } from './http.ts';
import { printObject, withOutput } from './output.ts';
import { readJsonFile, statePath, writeJsonFile } from './profiles.ts';
import { createCommand, deleteCommand, editCommand, getCommand, kind, listCommand, type Opts } from './resources.ts';
import { StatusLine, waitForDrive, waitForJob, withWait } from './wait.ts';

const DRIVES = kind({
  path: 'drives',
  noun: 'drive',
  columns: ['uuid', 'name', 'status', 'size', 'media', 'storage_type', 'mounted_on'],
  filters: ['name', 'tag', 'status'],
});
const LIBRARY_COLUMNS = ['uuid', 'name', 'media', 'size', 'os', 'distribution', 'version'];
const LIBDRIVES = kind({ path: 'libdrives', noun: 'library drive', columns: LIBRARY_COLUMNS, filters: ['name'] });

/** After a clone: its jobs' progress, then the drive in a steady state. */
async function cloneAndWait(api: Api, made: Json, label: string, opts: Opts): Promise<Json> {
  if (!opts.wait) return made;
  for (const j of made.jobs ?? []) await waitForJob(api, j.uuid, label, opts.timeout);
  return waitForDrive(api, made.uuid, made.name, opts.timeout);
}

export function registerDrives(program: Command): void {
  const g = program.command('drives').alias('drive').description('disks and cdroms');
  listCommand(g, DRIVES);
  getCommand(g, DRIVES);
  createCommand(
    g,
    DRIVES,
    (c) =>
      withWait(c, 'it is ready')
        .option('--name <name>', 'its name')
        .option('--size <size>', 'its size, e.g. 10G')
        .addOption(new Option('--media <media>', 'disk or cdrom').choices(['disk', 'cdrom']))
        .option('--storage-type <type>', 'dssd, ...'),
    (_api, body, opts) => {
      if (opts.name !== undefined) body.name = opts.name;
      if (opts.size !== undefined) body.size = parseSize(String(opts.size));
      if (opts.media !== undefined) body.media = opts.media;
      if (opts.storageType !== undefined) body.storage_type = opts.storageType;
      body.media ??= 'disk';
      if (body.name === undefined || body.size === undefined) throw new UsageError('give --name and --size (or a definition with --from)');
    },
    'opensigma drives create --name data1 --size 10G --wait',
    async (api, made, opts) => (opts.wait ? waitForDrive(api, made.uuid, made.name, opts.timeout) : made),
  );
  editCommand(
    g,
    DRIVES,
    (c) => c.option('--name <name>', 'its new name'),
    (_api, body, opts) => {
      if (opts.name !== undefined) body.name = opts.name;
    },
  );

  const resizeCmd = g.command('resize <name-or-uuid> <size>').description('grow a drive (drives never shrink)');
  const resize = withWait(withOutput(withProfile(resizeCmd)), 'the resize is done');
  example(resize, 'opensigma drives resize data1 20G --wait');
  resize.action(async (ref: string, size: string, opts: Opts) => {
    const api = apiOf(opts);
    const d = await resolve(api, 'drives', 'drive', ref);
    const body = { ...(await api.call('GET', `/drives/${d.uuid}/`)), size: parseSize(size) };
    let out = (await api.call('POST', `/drives/${d.uuid}/action/`, body, { do: 'resize' }))?.objects?.[0];
    if (opts.wait) out = await waitForDrive(api, d.uuid, ref, opts.timeout);
    printObject(out, opts);
  });

  const clone = withWait(withOutput(withProfile(g.command('clone <name-or-uuid>').description('copy a drive'))), 'the copy is done');
  clone.option('--name <name>', 'name of the copy (default: by the profile clone_naming)');
  example(clone, 'opensigma drives clone data1 --name data2 --wait');
  clone.action(async (ref: string, opts: Opts) => {
    const api = apiOf(opts);
    const d = await resolve(api, 'drives', 'drive', ref);
    const made = (await api.call('POST', `/drives/${d.uuid}/action/`, opts.name !== undefined ? { name: opts.name } : {}, { do: 'clone' })).objects[0];
    printObject(await cloneAndWait(api, made, `cloning ${ref}`, opts), opts);
  });

  const up = withProfile(g.command('upload <file>').description('upload a raw image as a new drive; run again after an interruption to resume'));
  up.option('--name <name>', 'name of the drive (default: the file name)');
  up.addOption(new Option('--media <media>', 'disk or cdrom').choices(['disk', 'cdrom']).default('disk'));
  up.addOption(new Option('--chunk-size <size>', 'bytes per request; up to 16M').default('5M'));
  up.option('--restart', 'forget an interrupted upload of this file and start anew');
  example(up, 'opensigma drives upload debian.raw --name debian', 'opensigma drives upload debian.raw   # again, after an interruption: resumes');
  up.action(async (file: string, opts: Opts) => console.log(await upload(apiOf(opts), file, opts)));

  const down = withProfile(g.command('download <name-or-uuid> [file]').description('download a drive image (raw) to FILE, or - for standard output'));
  example(down, 'opensigma drives download data1 data1.raw', 'opensigma drives download data1 - | gzip > data1.raw.gz');
  down.action(async (ref: string, file: string | undefined, opts: Opts) => download(apiOf(opts), ref, file));

  deleteCommand(g, DRIVES);

  const lib = program.command('libdrives').alias('library').description('the library: images offered to every account');
  listCommand(lib, LIBDRIVES);
  getCommand(lib, LIBDRIVES);
  const lc = withWait(withOutput(withProfile(lib.command('clone <name-or-uuid>').description('copy a library drive into your drives'))), 'the copy is done');
  lc.option('--name <name>', 'name of the copy');
  example(lc, 'opensigma libdrives clone "opensigma tiny guest (disk)" --name boot --wait');
  lc.action(async (ref: string, opts: Opts) => {
    const api = apiOf(opts);
    const d = await resolve(api, 'libdrives', 'library drive', ref);
    const made = (await api.call('POST', `/libdrives/${d.uuid}/action/`, opts.name !== undefined ? { name: opts.name } : {}, { do: 'clone' })).objects[0];
    printObject(await cloneAndWait(api, made, `cloning ${ref}`, opts), opts);
  });
}

interface UploadState {
  [key: string]: { uuid: string; chunkSize: number };
}

/**
 * The resumable upload protocol (POST /initupload/, then numbered chunks): a chunk already in answers 200 to a GET and
 * is skipped, so running the same upload again after an interruption sends only what is missing. The drive's uuid is
 * remembered per file (path, size, modification time) and endpoint until the upload ends.
 */
async function upload(api: Api, file: string, opts: Opts): Promise<string> {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
  }
  if (!st.isFile() || st.size === 0) throw new UsageError(`${file} is not a file with bytes in it`);
  const stateFile = statePath('uploads.json');
  const key = `${api.base} ${api.profile.user ?? ''} ${abs} ${st.size} ${st.mtimeMs}`;
  const state = readJsonFile<UploadState>(stateFile, {});
  let entry = opts.restart ? undefined : state[key];
  if (entry) {
    const d = await api.call('GET', `/drives/${entry.uuid}/`).catch(() => null);
    if (!d || d.status !== 'uploading' || d.size !== st.size) entry = undefined;
  }
  const chunkSize = entry?.chunkSize ?? parseSize(String(opts.chunkSize), '--chunk-size');
  if (chunkSize < 1 || chunkSize > 16 * 1024 * 1024) throw new UsageError('--chunk-size must be from 1 byte to 16M');
  // A drive made just now has no chunk in yet: asking for each would double the round trips.
  const fresh = !entry;
  if (!entry) {
    const made = await api.call('POST', '/initupload/', { name: opts.name ?? path.basename(abs), media: opts.media ?? 'disk', size: st.size });
    entry = { uuid: made.objects[0].uuid, chunkSize };
    writeJsonFile(stateFile, { ...readJsonFile<UploadState>(stateFile, {}), [key]: entry });
  }
  const { uuid } = entry;
  const count = Math.max(1, Math.floor(st.size / chunkSize));
  const line = new StatusLine().start(`uploading ${file}`);
  const fd = fs.openSync(abs, 'r');
  try {
    let sent = 0;
    let next = 1;
    // A few chunks in flight: one at a time left the link idle while the server wrote each chunk.
    const worker = async () => {
      for (let n = next++; n <= count; n = next++) {
        const offset = (n - 1) * chunkSize;
        const length = n === count ? st.size - offset : chunkSize;
        const q = { resumableChunkNumber: n, resumableChunkSize: chunkSize, resumableTotalSize: st.size };
        if (fresh || !(await chunkIsIn(api, uuid, q))) {
          const buf = Buffer.alloc(length);
          fs.readSync(fd, buf, 0, length, offset);
          await api.fetch('POST', `/drives/${uuid}/upload/`, { query: q, raw: buf, headers: { 'content-type': 'application/octet-stream' } });
        }
        sent += length;
        line.progress(`uploading ${path.basename(file)}`, sent, st.size);
      }
    };
    await Promise.all(Array.from({ length: Math.min(UPLOAD_IN_FLIGHT, count) }, worker));
  } finally {
    fs.closeSync(fd);
    line.stop();
  }
  const rest = readJsonFile<UploadState>(stateFile, {});
  delete rest[key];
  writeJsonFile(stateFile, rest);
  return uuid;
}

/** 200: the chunk is in already; 404: it must be sent. */
const UPLOAD_IN_FLIGHT = 4;

async function chunkIsIn(api: Api, uuid: string, q: Record<string, number>): Promise<boolean> {
  try {
    await (await api.fetch('GET', `/drives/${uuid}/upload/`, { query: q })).body?.cancel();
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return false;
    throw e;
  }
}

async function download(api: Api, ref: string, file: string | undefined): Promise<void> {
  const d = await resolve(api, 'drives', 'drive', ref);
  const res = await api.fetch('GET', `/drives/${d.uuid}/download/`);
  if (!res.body) throw new CliError('the download came without a body');
  const total = Number(res.headers.get('content-length') ?? 0);
  const toStdout = file === '-';
  const target = toStdout ? null : path.resolve(file ?? `${ref.replace(/[^\w.-]+/g, '_')}.img`);
  // Written aside and renamed at the end: a cut download never looks like a whole image.
  const tmp = target ? `${target}.part` : null;
  const line = new StatusLine().start(`downloading ${ref}`);
  let got = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      got += chunk.length;
      line.progress(`downloading ${ref}`, got, total);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), count, tmp ? fs.createWriteStream(tmp) : process.stdout);
    if (tmp) fs.renameSync(tmp, target!);
  } catch (e) {
    if (tmp) fs.rmSync(tmp, { force: true });
    throw new CliError(`download of ${ref} failed: ${(e as Error).message}`);
  } finally {
    line.stop();
  }
  if (target) console.error(`${ref}: ${got} bytes in ${target}`);
}
