import { useEffect, useState } from 'preact/hooks';
import type { Static } from 'typebox';
import type { Server as ServerSchema } from '../../../src/api/schemas.ts';
import type { DriveDoc, LibdriveDoc, TagsDoc, AuditLogDoc, JobsDoc } from '../api-types.generated.ts';
import { ApiFailure, del, get, post, put, type List } from '../api.ts';
import { listen } from '../notifications.ts';
import { may, useMe } from '../session.ts';
import type { PlacedErrors } from '../errors.ts';
import { withPolicy } from '../firewall.ts';
import { Field, GeneralErrors, Pager, Status, Table, failureErrors, formatBytes, useFocusFirst } from '../ui.tsx';

export type Server = Static<typeof ServerSchema>;
interface Keypair {
  uuid: string;
  name: string;
  public_key: string;
}
interface Capabilities {
  servers: { cpu: { min: number; max: number }; mem: { min: number; max: number }; smp: { min: number; max: number } };
}

const LIMIT = 20;
const STATUSES = ['stopped', 'starting', 'running', 'stopping', 'paused', 'unavailable'];
/** The API's words for what each button does, and the permission a grantee needs for it. */
const ACTIONS: Array<{ label: string; action: string; needs: string; when: string[] }> = [
  { label: 'Start', action: 'start', needs: 'START', when: ['stopped'] },
  { label: 'Stop', action: 'stop', needs: 'STOP', when: ['running', 'starting', 'stopping'] },
  { label: 'Shut down', action: 'shutdown', needs: 'STOP', when: ['running'] },
  { label: 'Restart', action: 'restart', needs: 'STOP', when: ['running'] },
  { label: 'Clone', action: 'clone', needs: 'CLONE', when: ['stopped'] },
];

/** Lists read themselves again when the websocket tells of a change to their kind (never on a timer). */
export function useLive(kind: string, reload: () => void, patch?: (o: { uuid: string }) => boolean): void {
  useEffect(
    () =>
      listen((f) => {
        if (f.resource_type === '*') return reload();
        if (f.resource_type !== kind) return;
        if (f.object && patch?.(f.object)) return;
        reload();
      }),
    [kind, reload, patch],
  );
}

function ServerActions({ s, onDone, onMessage }: { s: Server; onDone?: () => void; onMessage: (m: string) => void }) {
  const me = useMe();
  const [busy, setBusy] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const run = async (action: string, label: string) => {
    setBusy(true);
    try {
      await post(`/servers/${s.uuid}/action/?do=${action}`, action === 'clone' ? { name: `${s.name} clone` } : undefined);
      onMessage(`${label}: asked for ${s.name}.`);
      onDone?.();
    } catch (e) {
      onMessage(`${label} ${s.name}: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  const deleted = () => {
    setDeleting(false);
    onMessage(`Deleted ${s.name}.`);
    onDone?.();
  };
  return (
    <div class="actions">
      {ACTIONS.filter((a) => a.when.includes(s.status) && may(me, s, a.needs)).map((a) => (
        <button type="button" disabled={busy} onClick={() => run(a.action, a.label)}>
          {a.label}
        </button>
      ))}
      {s.status === 'running' && may(me, s, 'OPEN_VNC') && (
        <>
          <button type="button" onClick={() => (location.hash = `#/servers/${s.uuid}/console`)}>
            Console
          </button>
          <button type="button" onClick={() => (location.hash = `#/servers/${s.uuid}/vnc`)}>
            VNC
          </button>
        </>
      )}
      {s.status === 'stopped' && s.owner?.uuid === me.uuid && (
        <button type="button" onClick={() => setDeleting(true)}>
          Delete
        </button>
      )}
      {deleting && <DeleteServer s={s} onClose={() => setDeleting(false)} onDone={deleted} />}
    </div>
  );
}

/** Deleting a server asks which of its drives go with it (none by default). */
function DeleteServer({ s, onClose, onDone }: { s: Server; onClose: () => void; onDone: () => void }) {
  const [drives, setDrives] = useState<DriveDoc[]>([]);
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const box = useFocusFirst<HTMLDivElement>();
  useEffect(() => {
    const ids = s.drives.map((d) => d.drive.uuid);
    if (ids.length)
      get<List<DriveDoc>>(`/drives/detail/?limit=0&uuid=${ids.join(',')}`).then(
        (l) => setDrives(l.objects),
        () => {},
      );
  }, [s.uuid]);
  const confirm = async () => {
    try {
      await del(`/servers/${s.uuid}/`);
      for (const d of chosen) await del(`/drives/${d}/`);
      onDone();
    } catch (e) {
      setErrors(failureErrors(e, []));
    }
  };
  return (
    <div role="dialog" aria-modal="false" aria-label={`Delete ${s.name}`} class="dialog" ref={box}>
      <p>Delete the server {s.name}? Choose the drives to delete with it; the others stay.</p>
      <GeneralErrors errors={errors} />
      {drives.map((d) => (
        <label class="check">
          <input
            type="checkbox"
            checked={chosen.has(String(d.uuid))}
            onChange={(e) => {
              const n = new Set(chosen);
              if (e.currentTarget.checked) n.add(String(d.uuid));
              else n.delete(String(d.uuid));
              setChosen(n);
            }}
          />{' '}
          Delete the drive {d.name} too
        </label>
      ))}
      <button type="button" onClick={confirm}>
        Delete server
      </button>
      <button type="button" onClick={onClose}>
        Keep it
      </button>
    </div>
  );
}

/** One page of the server list as the API is asked for it (also asked early, with the sign-in check: main.tsx). */
export function serversPath(f: { name?: string; tag?: string; status?: string; offset: number }): string {
  const q = new URLSearchParams({ limit: String(LIMIT), offset: String(f.offset) });
  if (f.name) q.set('name__contains', f.name);
  if (f.tag) q.set('tag', f.tag);
  if (f.status) q.set('status', f.status);
  return `/servers/detail/?${q}`;
}

export function ServersPage() {
  const [name, setName] = useState('');
  const [tag, setTag] = useState('');
  const [status, setStatus] = useState('');
  const [offset, setOffset] = useState(0);
  const [list, setList] = useState<List<Server> | null>(null);
  const [tags, setTags] = useState<TagsDoc[]>([]);
  const [message, setMessage] = useState('');
  const [seq, setSeq] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const me = useMe();
  const reload = () => setSeq((n) => n + 1);
  // The API has no bulk action: each chosen server is asked on its own, and each refusal is said with its name.
  const bulk = async (action: 'start' | 'stop') => {
    const chosen = (list?.objects ?? []).filter((s) => selected.has(s.uuid));
    setMessage(`Asking ${chosen.length} server${chosen.length === 1 ? '' : 's'} to ${action}…`);
    const refused: string[] = [];
    await Promise.all(
      chosen.map((s) => post(`/servers/${s.uuid}/action/?do=${action}`).catch((e: unknown) => void refused.push(`${s.name}: ${(e as Error).message}`))),
    );
    setSelected(new Set());
    setMessage(
      refused.length
        ? `${refused.length} of ${chosen.length} refused to ${action}: ${refused.join('; ')}`
        : `Asked ${chosen.length} server${chosen.length === 1 ? '' : 's'} to ${action}.`,
    );
  };
  useEffect(() => {
    get<List<TagsDoc>>('/tags/?limit=0').then(
      (l) => setTags(l.objects),
      () => {},
    );
  }, []);
  useEffect(() => {
    let live = true;
    get<List<Server>>(serversPath({ name, tag, status, offset })).then(
      (l) => live && setList(l),
      (e) => live && setMessage((e as Error).message),
    );
    return () => {
      live = false;
    };
  }, [name, tag, status, offset, seq]);
  const patch = (o: { uuid: string }) => {
    if (!list?.objects.some((s) => s.uuid === o.uuid)) return false;
    const next = o as Server;
    // Still matching the status filter: update the row in place; else the page reads itself again.
    if (status && next.status !== status) return false;
    setList({ ...list, objects: list.objects.map((s) => (s.uuid === o.uuid ? next : s)) });
    return true;
  };
  useLive('servers', reload, patch);
  return (
    <section aria-labelledby="servers-h">
      <h1 id="servers-h">Servers</h1>
      <p>
        <a class="button" href="#/servers/new">
          Create server
        </a>
      </p>
      <form class="filters" role="search" aria-label="Filter servers" onSubmit={(e) => e.preventDefault()}>
        <Field
          label="Name contains"
          name="filter_name"
          value={name}
          onInput={(e) => {
            setName(e.currentTarget.value);
            setOffset(0);
          }}
        />
        <Field label="Tag" name="filter_tag">
          {(id) => (
            <select
              id={id}
              value={tag}
              onChange={(e) => {
                setTag(e.currentTarget.value);
                setOffset(0);
              }}
            >
              <option value="">Any tag</option>
              {tags.map((t) => (
                <option value={String(t.uuid)}>{t.name}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Status" name="filter_status">
          {(id) => (
            <select
              id={id}
              value={status}
              onChange={(e) => {
                setStatus(e.currentTarget.value);
                setOffset(0);
              }}
            >
              <option value="">Any status</option>
              {STATUSES.map((s) => (
                <option value={s}>{s}</option>
              ))}
            </select>
          )}
        </Field>
      </form>
      <Status>{message}</Status>
      {list && (
        <>
          <p class="toolbar">
            <button type="button" disabled={selected.size === 0} onClick={() => void bulk('start')}>
              Start selected
            </button>{' '}
            <button type="button" disabled={selected.size === 0} onClick={() => void bulk('stop')}>
              Stop selected
            </button>
          </p>
          <Table caption="Your servers and those shared with you" head={['Name', 'Status', 'CPU', 'Memory', 'Actions', 'Select']}>
            {list.objects.map((s) => (
              <tr data-uuid={s.uuid}>
                <td>
                  <a href={`#/servers/${s.uuid}`}>{s.name}</a>
                  {s.owner && s.owner.uuid !== me.uuid && <small> (shared with you)</small>}
                </td>
                <td class={`state ${s.status}`} data-testid="status">
                  {s.status}
                </td>
                <td>{s.cpu} MHz</td>
                <td>{formatBytes(s.mem)}</td>
                <td>
                  <ServerActions s={s} onMessage={setMessage} onDone={s.owner?.uuid === me.uuid ? undefined : reload} />
                </td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select ${s.name}`}
                    checked={selected.has(s.uuid)}
                    onChange={(e) => {
                      const next = new Set(selected);
                      if (e.currentTarget.checked) next.add(s.uuid);
                      else next.delete(s.uuid);
                      setSelected(next);
                    }}
                  />
                </td>
              </tr>
            ))}
          </Table>
          {list.objects.length === 0 && <p>No servers match.</p>}
          <Pager offset={list.meta.offset} limit={LIMIT} total={list.meta.total_count} onPage={setOffset} />
        </>
      )}
    </section>
  );
}

const toggle = (list: string[], item: string, on: boolean) => (on ? [...list, item] : list.filter((x) => x !== item));
const MEM_UNITS = { MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;
const randomPassword = () => Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => 'abcdefghijkmnpqrstuvwxyz23456789'[b % 32]).join('');

interface Draft {
  name: string;
  cpu: string;
  mem: string;
  memUnit: keyof typeof MEM_UNITS;
  smp: string;
  boot: string;
  dhcp: boolean;
  policy: string;
  keys: string[];
  vnc_password: string;
  meta: string;
  userData: string;
}

/** Meta typed as key=value lines. */
export function parseMeta(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

const FIELDS = ['name', 'cpu', 'mem', 'smp', 'boot', 'dhcp', 'policy', 'keys', 'vnc_password', 'meta'];
const ALIASES = { drives: 'boot', nics: 'dhcp', 'nics.firewall_policy': 'policy', pubkeys: 'keys' };

export function ServerCreatePage() {
  const [d, setD] = useState<Draft>(() => ({
    ...{ name: '', cpu: '1000', mem: '512', memUnit: 'MiB', smp: '1', boot: '', dhcp: true, policy: '', keys: [] },
    ...{ vnc_password: randomPassword(), meta: '', userData: '' },
  }));
  const [caps, setCaps] = useState<Capabilities | null>(null);
  const [lib, setLib] = useState<LibdriveDoc[]>([]);
  const [drives, setDrives] = useState<DriveDoc[]>([]);
  const [keys, setKeys] = useState<Keypair[]>([]);
  const policies = usePolicies();
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const [busy, setBusy] = useState('');
  useEffect(() => {
    get<Capabilities>('/capabilities/').then(setCaps, () => {});
    get<List<LibdriveDoc>>('/libdrives/?limit=0').then(
      (l) => setLib(l.objects),
      () => {},
    );
    get<List<DriveDoc>>('/drives/detail/?limit=0').then(
      (l) => setDrives(l.objects.filter((x) => x.status === 'unmounted')),
      () => {},
    );
    get<List<Keypair>>('/keypairs/?limit=0').then(
      (l) => setKeys(l.objects),
      () => {},
    );
  }, []);
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setD((old) => ({ ...old, [k]: v }));
  const c = caps?.servers;
  const placed = { errors: errors ?? undefined };
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors(null);
    const [source, bootId] = d.boot.split(':') as [string, string | undefined];
    const library = source === 'lib' ? lib.find((x) => x.uuid === bootId) : undefined;
    const meta = parseMeta(d.meta);
    if (d.userData.trim()) meta['cloudinit-user-data'] = d.userData;
    // cloud-init's CloudSigma datasource installs the key it finds in meta.ssh_public_key (pubkeys alone it ignores).
    const chosen = keys.filter((k) => d.keys.includes(k.uuid)).map((k) => k.public_key);
    if (chosen.length && !meta.ssh_public_key) meta.ssh_public_key = chosen.join('\n');
    const attach = (uuid: string, cdrom: boolean) => [{ boot_order: 1, dev_channel: '0:0', device: cdrom ? 'ide' : 'virtio', drive: uuid }];
    const body = {
      name: d.name,
      cpu: Number(d.cpu),
      mem: Math.round(Number(d.mem) * MEM_UNITS[d.memUnit]),
      smp: Number(d.smp),
      vnc_password: d.vnc_password,
      nics: d.dhcp ? [{ ip_v4_conf: { conf: 'dhcp', ip: null }, model: 'virtio', firewall_policy: d.policy || null }] : [],
      pubkeys: d.keys,
      meta,
      // A library cdrom attaches as it is; a library disk is cloned once the server exists (so a refused server clones nothing).
      drives:
        source === 'own' && bootId
          ? attach(bootId, drives.find((x) => x.uuid === bootId)?.media === 'cdrom')
          : library?.media === 'cdrom'
            ? attach(String(library.uuid), true)
            : [],
    };
    setBusy('Creating the server…');
    try {
      const made = (await post<{ objects: Server[] }>('/servers/', body)).objects[0]!;
      if (library && library.media !== 'cdrom') {
        setBusy(`Cloning ${library.name}…`);
        const clone = (await post<{ objects: DriveDoc[] }>(`/libdrives/${library.uuid}/action/?do=clone`, { name: `${d.name} boot` })).objects[0]!;
        await put(`/servers/${made.uuid}/`, { ...editable(made), drives: attach(String(clone.uuid), false) });
      }
      location.hash = `#/servers/${made.uuid}`;
    } catch (err) {
      setErrors(failureErrors(err, FIELDS, ALIASES));
    } finally {
      setBusy('');
    }
  };
  return (
    <section aria-labelledby="create-h">
      <h1 id="create-h">Create server</h1>
      <form onSubmit={submit} noValidate aria-label="Create server">
        <GeneralErrors errors={errors} />
        <Field label="Name" name="name" value={d.name} onInput={(e) => set('name', e.currentTarget.value)} errors={errors ?? undefined} />
        <Field
          label="CPU (MHz)"
          name="cpu"
          type="number"
          inputMode="numeric"
          value={d.cpu}
          onInput={(e) => set('cpu', e.currentTarget.value)}
          {...placed}
          hint={c ? `${c.cpu.min}–${c.cpu.max} MHz` : undefined}
        />
        <div class="row">
          <Field
            label="Memory"
            name="mem"
            type="number"
            value={d.mem}
            onInput={(e) => set('mem', e.currentTarget.value)}
            {...placed}
            hint={c ? `${formatBytes(c.mem.min)}–${formatBytes(c.mem.max)}` : undefined}
          />
          <Field label="Memory unit" name="memUnit">
            {(id) => (
              <select id={id} value={d.memUnit} onChange={(e) => set('memUnit', e.currentTarget.value as Draft['memUnit'])}>
                <option>MiB</option>
                <option>GiB</option>
              </select>
            )}
          </Field>
        </div>
        <Field
          label="SMP (cores)"
          name="smp"
          type="number"
          value={d.smp}
          onInput={(e) => set('smp', e.currentTarget.value)}
          {...placed}
          hint={c ? `${c.smp.min}–${c.smp.max}` : undefined}
        />
        <Field label="Boot drive" name="boot" errors={errors ?? undefined}>
          {(id, described) => (
            <select id={id} value={d.boot} aria-describedby={described || undefined} onChange={(e) => set('boot', e.currentTarget.value)}>
              <option value="">No drive</option>
              <optgroup label="Library (cloned for this server; a cdrom attaches as it is)">
                {lib.map((x) => (
                  <option value={`lib:${x.uuid}`}>
                    {x.name} ({x.media})
                  </option>
                ))}
              </optgroup>
              <optgroup label="Your drives">
                {drives.map((x) => (
                  <option value={`own:${x.uuid}`}>
                    {x.name} ({x.media}, {formatBytes(Number(x.size))})
                  </option>
                ))}
              </optgroup>
            </select>
          )}
        </Field>
        <Field label="DHCP network interface" name="dhcp" type="checkbox" checked={d.dhcp} onChange={(e) => set('dhcp', e.currentTarget.checked)} {...placed} />
        {d.dhcp && (
          <Field label="Firewall policy of the interface" name="policy" errors={errors ?? undefined}>
            {(id, described) => (
              <select id={id} value={d.policy} aria-describedby={described || undefined} onChange={(e) => set('policy', e.currentTarget.value)}>
                <option value="">No policy</option>
                {policies.map((p) => (
                  <option value={p.uuid}>{p.name ?? p.uuid}</option>
                ))}
              </select>
            )}
          </Field>
        )}
        <fieldset>
          <legend>SSH keys</legend>
          {keys.length === 0 && <p>You have no keys yet (see Keys).</p>}
          {keys.map((k) => (
            <label class="check">
              <input type="checkbox" checked={d.keys.includes(k.uuid)} onChange={(e) => set('keys', toggle(d.keys, k.uuid, e.currentTarget.checked))} />{' '}
              {k.name}
            </label>
          ))}
          {errors?.fields.keys && <p class="error">{errors.fields.keys.join(' ')}</p>}
        </fieldset>
        <Field label="VNC password" name="vnc_password" value={d.vnc_password} onInput={(e) => set('vnc_password', e.currentTarget.value)} {...placed} />
        <Field label="Meta (key=value, one a line)" name="meta" errors={errors ?? undefined}>
          {(id) => <textarea id={id} rows={3} value={d.meta} onInput={(e) => set('meta', e.currentTarget.value)} />}
        </Field>
        <Field label="Cloud-init user-data" name="userData">
          {(id) => <textarea id={id} rows={5} value={d.userData} onInput={(e) => set('userData', e.currentTarget.value)} />}
        </Field>
        <button type="submit" disabled={!!busy}>
          Create
        </button>
        <Status>{busy}</Status>
      </form>
    </section>
  );
}

/** What a PUT of a server must carry again (the API edits the whole definition). */
export function editable(s: Server) {
  return {
    name: s.name,
    cpu: s.cpu,
    mem: s.mem,
    smp: s.smp,
    vnc_password: s.vnc_password,
    meta: s.meta,
    nics: s.nics.map((n) => ({
      ip_v4_conf: n.ip_v4_conf && { conf: n.ip_v4_conf.conf, ip: n.ip_v4_conf.ip?.uuid ?? null },
      model: n.model,
      mac: n.mac,
      vlan: n.vlan?.uuid ?? null,
    })),
    drives: s.drives.map((x) => ({ boot_order: x.boot_order, dev_channel: x.dev_channel, device: x.device, drive: x.drive.uuid })),
    pubkeys: s.pubkeys.map((k) => k.uuid),
    tags: s.tags.map((t) => t.uuid),
  };
}

interface PolicyItem {
  uuid: string;
  name: string | null;
}

/** The policies the user may put on a NIC: his own and those shared with him (the API checks ATTACH). */
function usePolicies(): PolicyItem[] {
  const [list, setList] = useState<PolicyItem[]>([]);
  useEffect(() => {
    get<List<PolicyItem>>('/fwpolicies/?limit=0').then(
      (l) => setList(l.objects),
      () => {},
    );
  }, []);
  return list;
}

/** A public NIC's firewall policy, changed in place (a running server takes it too). */
function NicPolicy({ s, mac, current, vlan, onSaved }: { s: Server; mac: string; current: string | null; vlan: boolean; onSaved: (s: Server) => void }) {
  const me = useMe();
  const policies = usePolicies();
  const [chosen, setChosen] = useState(current ?? '');
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => setChosen(current ?? ''), [current]);
  const name = (uuid: string | null) => (uuid ? (policies.find((p) => p.uuid === uuid)?.name ?? uuid) : 'none');
  if (vlan) return <>none (a VLAN interface takes no policy)</>;
  if (!may(me, s, 'EDIT')) return <>{name(current)}</>;
  const apply = async () => {
    setBusy(true);
    setErrors(null);
    try {
      const body = editable(s);
      onSaved(await put<Server>(`/servers/${s.uuid}/`, { ...body, nics: withPolicy(body.nics, mac, chosen || null) }));
    } catch (e) {
      setErrors(failureErrors(e, ['policy'], { nics: 'policy' }));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="row in-cell">
      <Field label={`Firewall policy of ${mac}`} name="policy" errors={errors ?? undefined}>
        {(id, described) => (
          <select id={id} value={chosen} aria-describedby={described || undefined} onChange={(e) => setChosen(e.currentTarget.value)}>
            <option value="">No policy</option>
            {policies.map((p) => (
              <option value={p.uuid}>{p.name ?? p.uuid}</option>
            ))}
            {current && !policies.some((p) => p.uuid === current) && <option value={current}>{current}</option>}
          </select>
        )}
      </Field>
      <button type="button" disabled={busy || chosen === (current ?? '')} onClick={apply}>
        Apply policy to {mac}
      </button>
      <GeneralErrors errors={errors} />
    </div>
  );
}

export function ServerDetailPage({ uuid }: { uuid: string }) {
  const me = useMe();
  const [s, setS] = useState<Server | null>(null);
  const [gone, setGone] = useState('');
  const [drives, setDrives] = useState<DriveDoc[]>([]);
  const [logs, setLogs] = useState<AuditLogDoc[]>([]);
  const [jobs, setJobs] = useState<JobsDoc[]>([]);
  const [message, setMessage] = useState('');
  const [seq, setSeq] = useState(0);
  const reload = () => setSeq((n) => n + 1);
  useEffect(() => {
    get<Server>(`/servers/${uuid}/`).then(
      (x) => {
        setS(x);
        const ids = x.drives.map((dr) => dr.drive.uuid);
        // Library cdroms attach as they are: their names are in /libdrives/, not /drives/.
        if (ids.length)
          Promise.all(
            [`/drives/detail/?limit=0&uuid=${ids.join(',')}`, `/libdrives/?limit=0&uuid=${ids.join(',')}`].map((p) =>
              get<List<DriveDoc>>(p).then(
                (l) => l.objects,
                () => [],
              ),
            ),
          ).then(([own, lib]) => setDrives([...own!, ...lib!]));
      },
      (e) => setGone(e instanceof ApiFailure && e.status === 404 ? 'This server does not exist, or is not yours to see.' : (e as Error).message),
    );
    get<List<AuditLogDoc>>(`/logs/?limit=20&uuid=${uuid}`).then(
      (l) => setLogs(l.objects),
      () => {},
    );
    get<List<JobsDoc>>('/jobs/?limit=50').then(
      (l) => setJobs(l.objects.filter((j) => JSON.stringify(j.resources ?? []).includes(uuid))),
      () => {},
    );
  }, [uuid, seq]);
  const patch = (o: { uuid: string }) => {
    if (o.uuid !== uuid) return true; // another server: nothing to do here
    setS(o as Server);
    return true;
  };
  useLive('servers', reload, patch);
  if (gone) return <p role="alert">{gone}</p>;
  if (!s) return <p role="status">Loading…</p>;
  return (
    <section aria-labelledby="server-h">
      <h1 id="server-h">{s.name}</h1>
      <p>
        Status: <strong data-testid="server-status">{s.status}</strong>
      </p>
      <ServerActions s={s} onMessage={setMessage} onDone={s.owner?.uuid === me.uuid ? undefined : reload} />
      <Status>{message}</Status>
      <dl>
        <dt>CPU</dt>
        <dd>
          {s.cpu} MHz, {s.smp} {s.smp === 1 ? 'core' : 'cores'}
        </dd>
        <dt>Memory</dt>
        <dd>{formatBytes(s.mem)}</dd>
        <dt>Running since</dt>
        <dd>{s.runtime?.active_since ?? 'not running'}</dd>
      </dl>
      <h2>Addresses</h2>
      {s.runtime?.nics.length ? (
        <ul>
          {s.runtime.nics.map((n) => (
            <li>
              {n.mac}: {n.ip_v4?.uuid ?? 'no IPv4 address yet'} ({n.interface_type})
            </li>
          ))}
        </ul>
      ) : (
        <p>No addresses: the server is not running.</p>
      )}
      <h2>Drives</h2>
      <Table caption="Drives of this server" head={['Drive', 'Device', 'Boot order', 'Size']}>
        {s.drives.map((x) => {
          const dr = drives.find((y) => y.uuid === x.drive.uuid);
          return (
            <tr>
              <td>{dr?.name ?? x.drive.uuid}</td>
              <td>
                {x.device} {x.dev_channel}
              </td>
              <td>{x.boot_order ?? '—'}</td>
              <td>{dr ? formatBytes(Number(dr.size)) : ''}</td>
            </tr>
          );
        })}
      </Table>
      <h2>Network interfaces</h2>
      <Table caption="Network interfaces of this server" head={['MAC', 'IPv4', 'VLAN', 'Model', 'Firewall policy']}>
        {s.nics.map((n) => (
          <tr>
            <td>{n.mac}</td>
            <td>{n.ip_v4_conf ? `${n.ip_v4_conf.conf}${n.ip_v4_conf.ip ? ` ${n.ip_v4_conf.ip.uuid}` : ''}` : 'none'}</td>
            <td>{n.vlan?.uuid ?? '—'}</td>
            <td>{n.model}</td>
            <td>
              <NicPolicy s={s} mac={n.mac} current={n.firewall_policy?.uuid ?? null} vlan={!!n.vlan} onSaved={setS} />
            </td>
          </tr>
        ))}
      </Table>
      <h2>Jobs</h2>
      {jobs.length ? (
        <ul>
          {jobs.map((j) => (
            <li>
              {j.operation} {j.state} {j.created}
            </li>
          ))}
        </ul>
      ) : (
        <p>No jobs.</p>
      )}
      <h2>Audit log</h2>
      {logs.length ? (
        <Table caption="Audit log entries of this server" head={['When', 'Action', 'Result']}>
          {logs.map((l) => (
            <tr>
              <td>{l.timestamp}</td>
              <td>{l.action}</td>
              <td>{l.success ? 'success' : (l.error_message ?? 'failed')}</td>
            </tr>
          ))}
        </Table>
      ) : (
        <p>No audit log entries.</p>
      )}
    </section>
  );
}
