import { useEffect, useState } from 'preact/hooks';
import type { FwpolicyDoc } from '../api-types.generated.ts';
import { ApiFailure, del, get, post, put } from '../api.ts';
import type { PlacedErrors } from '../errors.ts';
import { emptyRule, fromRules, placePolicyErrors, ruleField, toRules, type RuleDraft } from '../firewall.ts';
import { may, useMe } from '../session.ts';
import { Field, GeneralErrors, Status } from '../ui.tsx';
import { ListOf, Section } from './others.tsx';
import { useLive } from './servers.tsx';

const CHOICES: Partial<Record<keyof RuleDraft, Array<[string, string]>>> = {
  action: [
    ['accept', 'accept'],
    ['drop', 'drop'],
  ],
  direction: [
    ['in', 'in (to the server)'],
    ['out', 'out (from the server)'],
    ['both', 'both'],
  ],
  ip_proto: [
    ['', 'any'],
    ['tcp', 'tcp'],
    ['udp', 'udp'],
  ],
};

const LABELS: Record<keyof RuleDraft, string> = {
  action: 'Action',
  direction: 'Direction',
  ip_proto: 'Protocol',
  src_ip: 'Source IP or network',
  src_port: 'Source port',
  dst_ip: 'Destination IP or network',
  dst_port: 'Destination port',
  comment: 'Comment',
};

const HINTS: Partial<Record<keyof RuleDraft, string>> = {
  src_ip: 'blank for any; a.b.c.d or a.b.c.d/n, ! negates',
  dst_ip: 'blank for any',
  src_port: 'blank for any; 22 or 1000:2000, ! negates',
  dst_port: 'blank for any',
};

function RuleFields({
  i,
  rule,
  errors,
  onChange,
  onRemove,
  onUp,
}: {
  i: number;
  rule: RuleDraft;
  errors: PlacedErrors | null;
  onChange: (r: RuleDraft) => void;
  onRemove: () => void;
  onUp?: () => void;
}) {
  const field = (k: keyof RuleDraft) => {
    const choices = CHOICES[k];
    const common = { label: LABELS[k], name: ruleField(i, k), errors: errors ?? undefined, hint: HINTS[k] };
    if (!choices) return <Field {...common} value={rule[k]} onInput={(e) => onChange({ ...rule, [k]: e.currentTarget.value })} />;
    return (
      <Field {...common}>
        {(id, described) => (
          <select
            id={id}
            value={rule[k]}
            aria-describedby={described || undefined}
            aria-invalid={errors?.fields[ruleField(i, k)] ? 'true' : undefined}
            onChange={(e) => onChange({ ...rule, [k]: e.currentTarget.value })}
          >
            {choices.map(([v, text]) => (
              <option value={v}>{text}</option>
            ))}
          </select>
        )}
      </Field>
    );
  };
  return (
    <fieldset class="rule">
      <legend>Rule {i + 1}</legend>
      <div class="row">
        {field('action')}
        {field('direction')}
        {field('ip_proto')}
      </div>
      <div class="row">
        {field('src_ip')}
        {field('src_port')}
        {field('dst_ip')}
        {field('dst_port')}
      </div>
      {field('comment')}
      {onUp && (
        <button type="button" onClick={onUp}>
          Move rule {i + 1} up
        </button>
      )}{' '}
      <button type="button" onClick={onRemove}>
        Remove rule {i + 1}
      </button>
    </fieldset>
  );
}

/** The name and the ordered rules of a policy, new or existing; what was typed stays when the API refuses it. */
function PolicyForm({
  initial,
  submitLabel,
  onSave,
}: {
  initial: { name: string; rules: RuleDraft[] };
  submitLabel: string;
  onSave: (body: unknown) => Promise<void>;
}) {
  const [name, setName] = useState(initial.name);
  const [rules, setRules] = useState<RuleDraft[]>(initial.rules);
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors(null);
    setBusy(true);
    try {
      await onSave({ name, rules: toRules(rules) });
    } catch (err) {
      setErrors(err instanceof ApiFailure ? placePolicyErrors(err.errors, rules.length) : { fields: {}, general: [(err as Error).message] });
    } finally {
      setBusy(false);
    }
  };
  const set = (i: number, r: RuleDraft) => setRules(rules.map((x, j) => (j === i ? r : x)));
  return (
    <form onSubmit={submit} noValidate aria-label={submitLabel}>
      <GeneralErrors errors={errors} />
      <Field label="Policy name" name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} errors={errors ?? undefined} />
      <p>The first rule that matches a packet decides it; a packet no rule matches is accepted.</p>
      {rules.map((r, i) => (
        <RuleFields
          i={i}
          rule={r}
          errors={errors}
          onChange={(n) => set(i, n)}
          onRemove={() => setRules(rules.filter((_, j) => j !== i))}
          onUp={i > 0 ? () => setRules([...rules.slice(0, i - 1), r, rules[i - 1]!, ...rules.slice(i + 1)]) : undefined}
        />
      ))}
      {errors?.fields.rules && <p class="error">{errors.fields.rules.join(' ')}</p>}
      <button type="button" onClick={() => setRules([...rules, emptyRule()])}>
        Add rule
      </button>{' '}
      <button type="submit" disabled={busy}>
        {submitLabel}
      </button>
      <Status>{busy ? 'Saving…' : ''}</Status>
    </form>
  );
}

export function FirewallPage() {
  const me = useMe();
  const [seq, setSeq] = useState(0);
  const [message, setMessage] = useState('');
  const [form, setForm] = useState(0);
  const remove = (p: FwpolicyDoc) =>
    del(`/fwpolicies/${p.uuid}/`).then(
      () => {
        setMessage(`Deleted the policy ${p.name}.`);
        setSeq((n) => n + 1);
      },
      (e) => setMessage(`${p.name}: ${(e as Error).message}`),
    );
  const create = async (body: unknown) => {
    const made = (await post<{ objects: FwpolicyDoc[] }>('/fwpolicies/', body)).objects[0]!;
    setMessage(`Created the policy ${made.name}.`);
    setSeq((n) => n + 1);
    setForm((n) => n + 1); // a fresh, empty form for the next one
  };
  return (
    <Section title="Firewall">
      <p>Policies filter the traffic of servers' public network interfaces. Attach one to a NIC on the server's page.</p>
      <Status>{message}</Status>
      <ListOf<FwpolicyDoc>
        caption="Firewall policies"
        path="/fwpolicies/detail/"
        live="fwpolicies"
        seq={seq}
        columns={[
          ['Name', (p) => <a href={`#/firewall/${p.uuid}`}>{p.name ?? '(no name)'}</a>],
          ['Rules', (p) => String(p.rules.length)],
          ['Servers', (p) => String(p.servers.length)],
          [
            'Actions',
            (p) =>
              p.owner?.uuid === me.uuid && (
                <button type="button" aria-label={`Delete ${p.name}`} onClick={() => remove(p)}>
                  Delete
                </button>
              ),
          ],
        ]}
      />
      <h2>Create a policy</h2>
      <PolicyForm key={form} initial={{ name: '', rules: [emptyRule()] }} submitLabel="Create policy" onSave={create} />
    </Section>
  );
}

export function PolicyPage({ uuid }: { uuid: string }) {
  const me = useMe();
  const [p, setP] = useState<FwpolicyDoc | null>(null);
  const [gone, setGone] = useState('');
  const [message, setMessage] = useState('');
  const [version, setVersion] = useState(0);
  useEffect(() => {
    get<FwpolicyDoc>(`/fwpolicies/${uuid}/`).then(setP, (e) =>
      setGone(e instanceof ApiFailure && e.status === 404 ? 'This policy does not exist, or is not yours to see.' : (e as Error).message),
    );
  }, [uuid, version]);
  // Someone else's change (another tab, a grantee with EDIT) shows on the list; this form keeps what is being typed.
  useLive(
    'fwpolicies',
    () => {},
    () => true,
  );
  if (gone) return <p role="alert">{gone}</p>;
  if (!p) return <p role="status">Loading…</p>;
  const save = async (body: unknown) => {
    const saved = await put<FwpolicyDoc>(`/fwpolicies/${uuid}/`, body);
    setP(saved);
    setMessage(`Saved the policy ${saved.name}.`);
    setVersion((n) => n + 1);
  };
  return (
    <Section title={`Firewall policy ${p.name ?? ''}`.trim()}>
      <p>
        <a href="#/firewall">Back to the policies</a>
      </p>
      <Status>{message}</Status>
      <p>
        Used by {p.servers.length === 1 ? '1 server' : `${p.servers.length} servers`}
        {p.servers.length > 0 && ': '}
        {p.servers.map((s, i) => (
          <>
            {i > 0 && ', '}
            <a href={`#/servers/${s.uuid}`}>{s.uuid}</a>
          </>
        ))}
      </p>
      {may(me, p as unknown as { owner: { uuid: string } | null; permissions: unknown[] }, 'EDIT') ? (
        <PolicyForm key={version} initial={{ name: p.name ?? '', rules: fromRules(p.rules) }} submitLabel="Save policy" onSave={save} />
      ) : (
        <p>This policy is shared with you to see or attach, not to edit.</p>
      )}
    </Section>
  );
}
