import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { AclsDoc, AuditLogDoc, IpDoc, JobsDoc, LibdriveDoc, ProfileDoc, SubscriptionDoc, TagsDoc, VlanDoc } from '../api-types.generated.ts';
import { del, get, post, put, type List } from '../api.ts';
import { PROFILE_FIELDS, RESOURCES, profileChanges, subscriptionBody, type SubscriptionDraft } from '../account.ts';
import type { Ref } from '../api-types.generated.ts';
import type { PlacedErrors } from '../errors.ts';
import { Field, GeneralErrors, Pager, Status, Table, failureErrors, formatBytes } from '../ui.tsx';
import { useLive } from './servers.tsx';

type Column<T> = [string, (o: T) => ComponentChildren];

/** One list endpoint as a paged table, read again when the websocket tells of a change to `live`. */
interface ListProps<T> {
  caption: string;
  path: string;
  columns: Column<T>[];
  /** the resource_type whose notifications make the list read itself again */
  live?: string;
  /** bumped by the page to read the list again after its own change */
  seq?: number;
  limit?: number;
}

export function ListOf<T extends { uuid?: unknown }>({ caption, path, columns, live, seq = 0, limit = 20 }: ListProps<T>) {
  const [list, setList] = useState<List<T> | null>(null);
  const [offset, setOffset] = useState(0);
  const [error, setError] = useState('');
  const [mine, setMine] = useState(0);
  const reload = () => setMine((n) => n + 1);
  useLive(live ?? '-', reload);
  useEffect(() => {
    const sep = path.includes('?') ? '&' : '?';
    get<List<T>>(`${path}${sep}limit=${limit}&offset=${offset}`).then(setList, (e) => setError((e as Error).message));
  }, [path, offset, seq, mine]);
  if (error) return <p role="alert">{error}</p>;
  if (!list) return <p role="status">Loading…</p>;
  return (
    <>
      <Table caption={caption} head={columns.map(([h]) => h)}>
        {list.objects.map((o) => (
          <tr>
            {columns.map(([, f]) => (
              <td>{f(o)}</td>
            ))}
          </tr>
        ))}
      </Table>
      {list.objects.length === 0 && <p>Nothing here yet.</p>}
      <Pager offset={list.meta.offset} limit={limit} total={list.meta.total_count} onPage={setOffset} />
    </>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  const id = `${title.toLowerCase().replace(/\W+/g, '-')}-h`;
  return (
    <section aria-labelledby={id}>
      <h1 id={id}>{title}</h1>
      {children}
    </section>
  );
}

export function LibraryPage() {
  const [message, setMessage] = useState('');
  const clone = (d: LibdriveDoc) =>
    post(`/libdrives/${d.uuid}/action/?do=clone`, { name: d.name }).then(
      () => setMessage(`Cloning ${d.name} into your drives.`),
      (e) => setMessage(`${d.name}: ${(e as Error).message}`),
    );
  return (
    <Section title="Library">
      <p>Images every account may use: a cdrom attaches to a server as it is, a disk is cloned into your drives.</p>
      <Status>{message}</Status>
      <ListOf<LibdriveDoc & { description?: string | null }>
        caption="Library drives"
        path="/libdrives/"
        columns={[
          ['Name', (d) => d.name],
          ['Media', (d) => d.media],
          ['Size', (d) => formatBytes(Number(d.size))],
          ['Description', (d) => d.description ?? ''],
          [
            '',
            (d) => (
              <button type="button" onClick={() => clone(d)}>
                Clone to my drives
              </button>
            ),
          ],
        ]}
      />
    </Section>
  );
}

function BuySubscription({ onBought }: { onBought: () => void }) {
  const [d, setD] = useState<SubscriptionDraft>({ resource: 'ip', amount: '1', period: '1 month', auto_renew: true });
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState('');
  const set = <K extends keyof SubscriptionDraft>(k: K, v: SubscriptionDraft[K]) => setD((old) => ({ ...old, [k]: v }));
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors(null);
    setBusy(true);
    try {
      const made = (await post<{ objects: SubscriptionDoc[] }>('/subscriptions/', subscriptionBody(d))).objects;
      setMessage(`Bought ${made.length === 1 ? 'a subscription' : `${made.length} subscriptions`} to ${d.resource}, ending ${made[0]?.end_time ?? ''}.`);
      onBought();
    } catch (err) {
      setErrors(failureErrors(err, ['resource', 'amount', 'period', 'auto_renew'], { end_time: 'period', start_time: 'period' }));
    } finally {
      setBusy(false);
    }
  };
  const placed = errors ?? undefined;
  return (
    <form onSubmit={submit} noValidate aria-label="Buy a subscription">
      <GeneralErrors errors={errors} />
      <div class="row">
        <Field label="Resource" name="resource" errors={placed}>
          {(id, described) => (
            <select id={id} value={d.resource} aria-describedby={described || undefined} onChange={(e) => set('resource', e.currentTarget.value)}>
              {RESOURCES.map(([v, text]) => (
                <option value={v}>{text}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Amount" name="amount" inputMode="numeric" value={d.amount} onInput={(e) => set('amount', e.currentTarget.value)} errors={placed} />
        <Field
          label="Period"
          name="period"
          hint='e.g. "1 month", "1 year"'
          value={d.period}
          onInput={(e) => set('period', e.currentTarget.value)}
          errors={placed}
        />
      </div>
      <Field
        label="Renew automatically"
        name="auto_renew"
        type="checkbox"
        checked={d.auto_renew}
        onChange={(e) => set('auto_renew', e.currentTarget.checked)}
        errors={placed}
      />
      <button type="submit" disabled={busy}>
        Buy subscription
      </button>
      <Status>{busy ? 'Buying…' : message}</Status>
    </form>
  );
}

export function NetworkingPage() {
  const [seq, setSeq] = useState(0);
  return (
    <Section title="Networking">
      <h2>IP addresses</h2>
      <ListOf<IpDoc & { server?: Ref | null; subscription?: { id?: number } | null }>
        caption="IP addresses"
        path="/ips/detail/"
        seq={seq}
        live="ips"
        columns={[
          ['Address', (i) => String(i.uuid)],
          ['Server', (i) => i.server?.uuid ?? '—'],
          ['Subscription', (i) => String(i.subscription?.id ?? '—')],
        ]}
      />
      <h2>VLANs</h2>
      <ListOf<VlanDoc>
        caption="VLANs"
        path="/vlans/detail/"
        seq={seq}
        live="vlans"
        columns={[
          ['Name', (v) => v.meta?.name ?? String(v.uuid)],
          ['UUID', (v) => String(v.uuid)],
        ]}
      />
      <h2>Subscriptions</h2>
      <BuySubscription onBought={() => setSeq((n) => n + 1)} />
      <ListOf<SubscriptionDoc>
        caption="Subscriptions"
        path="/subscriptions/"
        seq={seq}
        live="subscriptions"
        columns={[
          ['Resource', (s) => s.resource],
          ['Amount', (s) => s.amount],
          ['Period', (s) => s.period],
          ['Status', (s) => s.status],
          ['Ends', (s) => s.end_time],
        ]}
      />
    </Section>
  );
}

interface Keypair {
  uuid: string;
  name: string;
  fingerprint: string;
  public_key: string;
}

export function KeysPage() {
  const [name, setName] = useState('');
  const [key, setKey] = useState('');
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const [seq, setSeq] = useState(0);
  const [message, setMessage] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors(null);
    try {
      await post('/keypairs/', { name, public_key: key });
      setMessage(`Added the key ${name}.`);
      setName('');
      setKey('');
      setSeq((n) => n + 1);
    } catch (err) {
      setErrors(failureErrors(err, ['name', 'public_key']));
    }
  };
  const remove = (uuid: string) =>
    del(`/keypairs/${uuid}/`).then(
      () => setSeq((n) => n + 1),
      (e) => setMessage((e as Error).message),
    );
  return (
    <Section title="Keys">
      <Status>{message}</Status>
      <ListOf<Keypair>
        caption="SSH keys"
        path="/keypairs/"
        seq={seq}
        columns={[
          ['Name', (k) => k.name],
          ['Fingerprint', (k) => k.fingerprint],
          [
            '',
            (k) => (
              <button type="button" aria-label={`Delete ${k.name}`} onClick={() => remove(k.uuid)}>
                Delete
              </button>
            ),
          ],
        ]}
      />
      <form onSubmit={submit} noValidate aria-label="Add a key">
        <h2>Add a key</h2>
        <GeneralErrors errors={errors} />
        <Field label="Key name" name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} errors={errors ?? undefined} />
        <Field label="Public key" name="public_key" errors={errors ?? undefined}>
          {(id) => <textarea id={id} rows={3} value={key} onInput={(e) => setKey(e.currentTarget.value)} />}
        </Field>
        <button type="submit">Add key</button>
      </form>
    </Section>
  );
}

export function TagsPage() {
  const [name, setName] = useState('');
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const [seq, setSeq] = useState(0);
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors(null);
    try {
      await post('/tags/', { name });
      setName('');
      setSeq((n) => n + 1);
    } catch (err) {
      setErrors(failureErrors(err, ['name']));
    }
  };
  return (
    <Section title="Tags">
      <ListOf<TagsDoc & { resources?: unknown[] }>
        caption="Tags"
        path="/tags/"
        seq={seq}
        columns={[
          ['Name', (t) => t.name],
          ['Resources', (t) => String(t.resources?.length ?? 0)],
        ]}
      />
      <form onSubmit={submit} noValidate aria-label="Create a tag">
        <GeneralErrors errors={errors} />
        <Field label="Tag name" name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} errors={errors ?? undefined} />
        <button type="submit">Create tag</button>
      </form>
    </Section>
  );
}

const toggle = (list: string[], item: string, on: boolean) => (on ? [...list, item] : list.filter((x) => x !== item));

/** What an ACL can grant (src/commands/access.ts), in the words the API uses. */
const PERMISSIONS = ['LIST', 'EDIT', 'CLONE', 'START', 'STOP', 'OPEN_VNC', 'ATTACH', 'DELETE'];

export function SharingPage() {
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [tag, setTag] = useState('');
  const [rules, setRules] = useState<string[]>(['LIST']);
  const [tags, setTags] = useState<TagsDoc[]>([]);
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const [seq, setSeq] = useState(0);
  const [message, setMessage] = useState('');
  useEffect(() => {
    get<List<TagsDoc>>('/tags/?limit=0').then(
      (l) => setTags(l.objects),
      () => {},
    );
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors(null);
    try {
      await post('/acls/', { name, grantees: email ? [{ email }] : [], rules: rules.map((permission) => ({ permission })), tags: tag ? [tag] : [] });
      setMessage(`Shared what is tagged ${tags.find((t) => t.uuid === tag)?.name ?? ''} with ${email}.`);
      setName('');
      setEmail('');
      setSeq((n) => n + 1);
    } catch (err) {
      setErrors(failureErrors(err, ['name', 'grantees', 'rules', 'tags']));
    }
  };
  const unshare = (uuid: string) =>
    del(`/acls/${uuid}/`).then(
      () => setSeq((n) => n + 1),
      (e) => setMessage((e as Error).message),
    );
  return (
    <Section title="Sharing">
      <p>Access lists share what carries their tags with other users, with the permissions they grant.</p>
      <Status>{message}</Status>
      <ListOf<AclsDoc>
        caption="Access lists"
        path="/acls/"
        seq={seq}
        columns={[
          ['Name', (a) => a.name],
          ['Grantees', (a) => (a.grantees as unknown as Array<{ email?: string | null; uuid: string }>).map((g) => g.email ?? g.uuid).join(', ')],
          ['Permissions', (a) => ((a as unknown as { rules?: Array<{ permission: string }> }).rules ?? []).map((r) => r.permission).join(', ')],
          ['Tags', (a) => a.tags.map((t) => tags.find((x) => x.uuid === t.uuid)?.name ?? t.uuid).join(', ')],
          [
            '',
            (a) => (
              <button type="button" onClick={() => unshare(String(a.uuid))}>
                Stop sharing
              </button>
            ),
          ],
        ]}
      />
      <form onSubmit={submit} noValidate aria-label="Share">
        <h2>Share</h2>
        <GeneralErrors errors={errors} />
        <Field label="Access list name" name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} errors={errors ?? undefined} />
        <Field
          label="Share with (email)"
          name="grantees"
          type="email"
          value={email}
          onInput={(e) => setEmail(e.currentTarget.value)}
          errors={errors ?? undefined}
        />
        <Field label="What carries the tag" name="tags" errors={errors ?? undefined}>
          {(id) => (
            <select id={id} value={tag} onChange={(e) => setTag(e.currentTarget.value)}>
              <option value="">Choose a tag</option>
              {tags.map((t) => (
                <option value={String(t.uuid)}>{t.name}</option>
              ))}
            </select>
          )}
        </Field>
        <fieldset>
          <legend>Permissions</legend>
          {PERMISSIONS.map((p) => (
            <label class="check">
              <input type="checkbox" checked={rules.includes(p)} onChange={(e) => setRules(toggle(rules, p, e.currentTarget.checked))} /> {p}
            </label>
          ))}
          {errors?.fields.rules && <p class="error">{errors.fields.rules.join(' ')}</p>}
        </fieldset>
        <button type="submit">Share</button>
      </form>
    </Section>
  );
}

export function JobsPage() {
  return (
    <Section title="Jobs">
      <ListOf<JobsDoc>
        caption="Jobs"
        path="/jobs/"
        live="jobs"
        columns={[
          ['Operation', (j) => String(j.operation)],
          ['State', (j) => String(j.state)],
          ['Progress', (j) => `${Number((j.data as unknown as { progress?: number })?.progress ?? 0)}%`],
          ['Created', (j) => String(j.created)],
        ]}
      />
    </Section>
  );
}

export function LogsPage() {
  return (
    <Section title="Logs">
      <ListOf<AuditLogDoc>
        caption="Audit log, newest first"
        path="/logs/"
        columns={[
          ['When', (l) => l.timestamp],
          ['Category', (l) => l.category],
          ['Action', (l) => l.action],
          ['Result', (l) => (l.success ? 'success' : (l.error_message ?? 'failed'))],
        ]}
      />
    </Section>
  );
}

function ProfileForm({ profile, onSaved }: { profile: ProfileDoc; onSaved: (p: ProfileDoc) => void }) {
  const initial = () => Object.fromEntries(PROFILE_FIELDS.map(([k]) => [k, String((profile as unknown as Record<string, unknown>)[k] ?? '')]));
  const [draft, setDraft] = useState<Record<string, string>>(initial);
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors(null);
    const changes = profileChanges(profile as unknown as Record<string, unknown>, draft);
    if (!Object.keys(changes).length) return setMessage('Nothing to save: no field was changed.');
    setBusy(true);
    try {
      const saved = await put<ProfileDoc>('/profile/', changes);
      setMessage('Saved your profile.');
      onSaved(saved);
    } catch (err) {
      setMessage('');
      setErrors(
        failureErrors(
          err,
          PROFILE_FIELDS.map(([k]) => k),
        ),
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} noValidate aria-label="Profile">
      <GeneralErrors errors={errors} />
      {PROFILE_FIELDS.map(([k, label]) =>
        k === 'clone_naming' ? (
          <Field label={label} name={k} errors={errors ?? undefined} hint="how clones are named after their source">
            {(id, described) => (
              <select id={id} value={draft[k]} aria-describedby={described || undefined} onChange={(e) => setDraft({ ...draft, [k]: e.currentTarget.value })}>
                {['NONE', 'COUNTER', 'DATE', 'TIMESTAMP'].map((v) => (
                  <option value={v}>{v}</option>
                ))}
              </select>
            )}
          </Field>
        ) : (
          <Field
            label={k === 'autotopup_amount' ? `${label} (${profile.currency})` : label}
            name={k}
            value={draft[k]}
            onInput={(e) => setDraft({ ...draft, [k]: e.currentTarget.value })}
            errors={errors ?? undefined}
          />
        ),
      )}
      <button type="submit" disabled={busy}>
        Save profile
      </button>
      <Status>{busy ? 'Saving…' : message}</Status>
    </form>
  );
}

export function AccountPage() {
  const [p, setP] = useState<ProfileDoc | null>(null);
  const [usage, setUsage] = useState<Record<string, unknown> | null>(null);
  useEffect(() => {
    get<ProfileDoc>('/profile/').then(setP, () => {});
    get<Record<string, unknown>>('/currentusage/').then(setUsage, () => {});
  }, []);
  return (
    <Section title="Account">
      {p && (
        <dl>
          <dt>Email</dt>
          <dd>{p.email}</dd>
          <dt>Currency</dt>
          <dd>{p.currency}</dd>
          <dt>Signed up</dt>
          <dd>{p.signup_time}</dd>
        </dl>
      )}
      <h2>Profile</h2>
      {p && <ProfileForm profile={p} onSaved={setP} />}
      <h2>Usage</h2>
      {usage ? <pre class="usage">{JSON.stringify((usage as { usage?: unknown }).usage ?? usage, null, 2)}</pre> : <p>Loading…</p>}
    </Section>
  );
}
