import { useEffect, useState } from 'preact/hooks';
import type { DriveDoc, JobsDoc } from '../api-types.generated.ts';
import { API, del, get, post, put, uploadIo, type List } from '../api.ts';
import { may, useMe } from '../session.ts';
import type { PlacedErrors } from '../errors.ts';
import { sendChunks } from '../upload.ts';
import { Field, FocusIn, GeneralErrors, Pager, Status, Table, failureErrors, formatBytes } from '../ui.tsx';
import { editable, useLive, type Server } from './servers.tsx';

const GiB = 1024 ** 3;
const LIMIT = 20;

function CreateDrive({ onDone }: { onDone: (m: string) => void }) {
  const [name, setName] = useState('');
  const [size, setSize] = useState('1');
  const [media, setMedia] = useState('disk');
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors(null);
    try {
      await post('/drives/', { name, size: Math.round(Number(size) * GiB), media });
      onDone(`Created the drive ${name}.`);
      setName('');
    } catch (err) {
      setErrors(failureErrors(err, ['name', 'size', 'media']));
    }
  };
  return (
    <form onSubmit={submit} noValidate aria-label="Create drive" class="inline">
      <h2>Create a drive</h2>
      <GeneralErrors errors={errors} />
      <Field label="Drive name" name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} errors={errors ?? undefined} />
      <Field label="Size (GiB)" name="size" type="number" value={size} onInput={(e) => setSize(e.currentTarget.value)} errors={errors ?? undefined} />
      <Field label="Media" name="media" errors={errors ?? undefined}>
        {(id) => (
          <select id={id} value={media} onChange={(e) => setMedia(e.currentTarget.value)}>
            <option value="disk">disk</option>
            <option value="cdrom">cdrom</option>
          </select>
        )}
      </Field>
      <button type="submit">Create drive</button>
    </form>
  );
}

/** A local file becomes a drive through the resumable upload protocol, chunk by chunk, with its progress shown. */
function UploadDrive({ onDone }: { onDone: (m: string) => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return setErrors({ fields: { file: ['Choose a file to upload.'] }, general: [] });
    setErrors(null);
    try {
      const media = /\.iso$/i.test(file.name) ? 'cdrom' : 'disk';
      const d = (await post<{ objects: DriveDoc[] }>('/initupload/', { name: file.name, media, size: file.size })).objects[0]!;
      await sendChunks(file, API, String(d.uuid), uploadIo, (f) => setProgress(Math.floor(f * 100)));
      onDone(`Uploaded ${file.name}.`);
    } catch (err) {
      setErrors(failureErrors(err, ['file', 'size', 'name'], { size: 'file', name: 'file' }));
    }
  };
  return (
    <form onSubmit={submit} noValidate aria-label="Upload a drive" class="inline">
      <h2>Upload a drive</h2>
      <GeneralErrors errors={errors} />
      <Field label="File to upload" name="file" type="file" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} errors={errors ?? undefined} />
      <button type="submit" disabled={progress !== null && progress < 100}>
        Upload
      </button>
      {progress !== null && (
        <p>
          <label>
            Upload progress <progress max={100} value={progress} aria-valuetext={`${progress}%`} /> <span data-testid="upload-percent">{progress}%</span>
          </label>
        </p>
      )}
    </form>
  );
}

function DriveRow({ d, jobs, servers, onMessage }: { d: DriveDoc; jobs: JobsDoc[]; servers: Server[]; onMessage: (m: string) => void }) {
  const me = useMe();
  const [mode, setMode] = useState<'' | 'resize' | 'attach' | 'delete'>('');
  const [size, setSize] = useState(String(Number(d.size) / GiB));
  const [target, setTarget] = useState('');
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const uuid = String(d.uuid);
  const job = jobs.find((j) => j.state === 'started' && JSON.stringify(j.resources ?? []).includes(uuid));
  const act = async (f: () => Promise<unknown>, done: string) => {
    setErrors(null);
    try {
      await f();
      setMode('');
      onMessage(done);
    } catch (e) {
      // Beside a field only when its form is open: a clone's size error is the drive's, said in the row.
      setErrors(failureErrors(e, mode === 'resize' ? ['size'] : mode === 'attach' ? ['server'] : []));
    }
  };
  const attach = async () => {
    const s = await get<Server>(`/servers/${target}/`);
    const used = new Set(s.drives.map((x) => x.dev_channel));
    let ch = 0;
    while (used.has(`0:${ch}`)) ch++;
    const drive = { boot_order: null, dev_channel: `0:${ch}`, device: d.media === 'cdrom' ? 'ide' : 'virtio', drive: uuid };
    await put(`/servers/${s.uuid}/`, { ...editable(s), drives: [...editable(s).drives, drive] });
  };
  const submitted = (e: Event, f: () => Promise<unknown>, done: string) => {
    e.preventDefault();
    void act(f, done);
  };
  const resize = () => post(`/drives/${uuid}/action/?do=resize`, { name: d.name, media: d.media, size: Math.round(Number(size) * GiB) });
  const progress = job ? Number((job as unknown as { data?: { progress?: number } }).data?.progress ?? 0) : null;
  return (
    <tr data-uuid={uuid}>
      <td>{d.name}</td>
      <td>{d.media}</td>
      <td>{formatBytes(Number(d.size))}</td>
      <td>
        {d.status}
        {progress !== null && (
          <>
            {' '}
            <progress max={100} value={progress} aria-label={`Progress of ${d.name}`} /> {progress}%
          </>
        )}
      </td>
      <td class="actions">
        {may(me, d, 'EDIT') && (
          <button type="button" onClick={() => setMode('resize')}>
            Resize
          </button>
        )}
        {may(me, d, 'CLONE') && (
          <button type="button" onClick={() => act(() => post(`/drives/${uuid}/action/?do=clone`, { name: `${d.name} clone` }), `Cloning ${d.name}.`)}>
            Clone
          </button>
        )}
        {may(me, d, 'ATTACH') && (
          <button type="button" onClick={() => setMode('attach')}>
            Attach
          </button>
        )}
        {d.owner?.uuid === me.uuid && (
          <a class="button" href={`${API}/drives/${uuid}/download/`} download={String(d.name)}>
            Download
          </a>
        )}
        {may(me, d, 'DELETE') && (
          <button type="button" onClick={() => setMode('delete')}>
            Delete
          </button>
        )}
        <GeneralErrors errors={errors} />
        {mode === 'resize' && (
          <FocusIn>
            <form class="dialog" aria-label={`Resize ${d.name}`} noValidate onSubmit={(e) => submitted(e, resize, `Resizing ${d.name}.`)}>
              <Field
                label="New size (GiB)"
                name="size"
                type="number"
                value={size}
                onInput={(e) => setSize(e.currentTarget.value)}
                errors={errors ?? undefined}
              />
              <button type="submit">Resize drive</button>{' '}
              <button type="button" onClick={() => setMode('')}>
                Cancel
              </button>
            </form>
          </FocusIn>
        )}
        {mode === 'attach' && (
          <FocusIn>
            <form class="dialog" aria-label={`Attach ${d.name}`} onSubmit={(e) => submitted(e, attach, `Attached ${d.name}.`)}>
              <Field label="Server" name="server" errors={errors ?? undefined}>
                {(id) => (
                  <select id={id} value={target} onChange={(e) => setTarget(e.currentTarget.value)}>
                    <option value="">Choose a server</option>
                    {servers.map((s) => (
                      <option value={s.uuid}>{s.name}</option>
                    ))}
                  </select>
                )}
              </Field>
              <button type="submit" disabled={!target}>
                Attach drive
              </button>{' '}
              <button type="button" onClick={() => setMode('')}>
                Cancel
              </button>
            </form>
          </FocusIn>
        )}
        {mode === 'delete' && (
          <FocusIn>
            <div class="dialog" role="dialog" aria-label={`Delete ${d.name}`}>
              <p>Delete the drive {d.name} and everything on it?</p>
              <button type="button" onClick={() => act(() => del(`/drives/${uuid}/`), `Deleted ${d.name}.`)}>
                Delete drive
              </button>{' '}
              <button type="button" onClick={() => setMode('')}>
                Keep it
              </button>
            </div>
          </FocusIn>
        )}
      </td>
    </tr>
  );
}

export function DrivesPage() {
  const [list, setList] = useState<List<DriveDoc> | null>(null);
  const [jobs, setJobs] = useState<JobsDoc[]>([]);
  const [servers, setServers] = useState<Server[]>([]);
  const [offset, setOffset] = useState(0);
  const [message, setMessage] = useState('');
  const [seq, setSeq] = useState(0);
  const reload = () => setSeq((n) => n + 1);
  useEffect(() => {
    get<List<DriveDoc>>(`/drives/detail/?limit=${LIMIT}&offset=${offset}`).then(setList, (e) => setMessage((e as Error).message));
    get<List<JobsDoc>>('/jobs/?limit=50').then(
      (l) => setJobs(l.objects),
      () => {},
    );
    get<List<Server>>('/servers/detail/?limit=0').then(
      (l) => setServers(l.objects),
      () => {},
    );
  }, [offset, seq]);
  useLive('drives', reload);
  useLive('jobs', reload);
  const said = (m: string) => {
    setMessage(m);
    reload();
  };
  return (
    <section aria-labelledby="drives-h">
      <h1 id="drives-h">Drives</h1>
      <Status>{message}</Status>
      {list && (
        <>
          <Table caption="Your drives and those shared with you" head={['Name', 'Media', 'Size', 'Status', 'Actions']}>
            {list.objects.map((d) => (
              <DriveRow d={d} jobs={jobs} servers={servers} onMessage={said} />
            ))}
          </Table>
          <Pager offset={list.meta.offset} limit={LIMIT} total={list.meta.total_count} onPage={setOffset} />
        </>
      )}
      <div class="forms">
        <CreateDrive onDone={said} />
        <UploadDrive onDone={said} />
      </div>
    </section>
  );
}
