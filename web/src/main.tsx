import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiFailure, get, post, prefetch, whenSignedOut } from './api.ts';
import type { ProfileDoc } from './api-types.generated.ts';
import { startNotifications, stopNotifications, watchConnection } from './notifications.ts';
import { SessionContext, type Me } from './session.ts';
import { Field, GeneralErrors, failureErrors } from './ui.tsx';
import type { PlacedErrors } from './errors.ts';
import { ServersPage, ServerCreatePage, ServerDetailPage, serversPath } from './pages/servers.tsx';
import { DrivesPage } from './pages/drives.tsx';
import { FirewallPage, PolicyPage } from './pages/firewall.tsx';
import { AccountPage, JobsPage, KeysPage, LibraryPage, LogsPage, NetworkingPage, SharingPage, TagsPage } from './pages/others.tsx';

export const SECTIONS: Array<[string, string]> = [
  ['servers', 'Servers'],
  ['drives', 'Drives'],
  ['library', 'Library'],
  ['networking', 'Networking'],
  ['firewall', 'Firewall'],
  ['keys', 'Keys'],
  ['tags', 'Tags'],
  ['sharing', 'Sharing'],
  ['jobs', 'Jobs'],
  ['logs', 'Logs'],
  ['account', 'Account'],
];

function useHash(): string[] {
  const read = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const f = () => setParts(read());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return parts;
}

function SignIn({ onIn }: { onIn: (me: Me) => void }) {
  const [email, setEmail] = useState('');
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<PlacedErrors | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const pw = form.elements.namedItem('password') as HTMLInputElement;
    setBusy(true);
    setErrors(null);
    try {
      await post('/accounts/action/?do=login', { username: email, password: pw.value });
      const p = await get<ProfileDoc>('/profile/');
      onIn({ uuid: String(p.uuid), email: String(p.email) });
    } catch (err) {
      const placed = failureErrors(err, ['username', 'password'], { username: 'username' });
      if (err instanceof ApiFailure && err.status === 401) placed.general = ['The email or the password is wrong.'];
      setErrors(placed);
    } finally {
      // The password lives only in its input, and not even there once it has been tried.
      pw.value = '';
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>opensigma</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <h2>Sign in</h2>
        <GeneralErrors errors={errors} />
        <Field
          label="Email"
          name="username"
          type="email"
          autocomplete="username"
          required
          value={email}
          onInput={(e) => setEmail(e.currentTarget.value)}
          errors={errors ?? undefined}
        />
        <Field label="Password" name="password" type="password" autocomplete="current-password" required errors={errors ?? undefined} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}

type ConsolesModule = typeof import('./pages/consoles.tsx');
let consoles: Promise<ConsolesModule> | null = null;

/** xterm.js and noVNC are most of the bundle: they load when a console is opened, not with the first page. */
function Consoles({ uuid, kind }: { uuid: string; kind: 'console' | 'vnc' }) {
  const [mod, setMod] = useState<ConsolesModule | null>(null);
  const [failed, setFailed] = useState('');
  useEffect(() => {
    consoles ??= import('./pages/consoles.tsx');
    consoles.then(setMod, (e) => {
      consoles = null; // a lost connection: the next try loads it again
      setFailed(`The console could not be loaded: ${(e as Error).message}`);
    });
  }, []);
  if (failed) return <p role="alert">{failed}</p>;
  if (!mod) return <p role="status">Loading the console…</p>;
  return kind === 'console' ? <mod.ConsolePage uuid={uuid} /> : <mod.VncPage uuid={uuid} />;
}

function Page({ parts }: { parts: string[] }) {
  const [section = 'servers', id, sub] = parts;
  switch (section) {
    case 'servers':
      if (id === 'new') return <ServerCreatePage />;
      if (id && (sub === 'console' || sub === 'vnc')) return <Consoles uuid={id} kind={sub} />;
      if (id) return <ServerDetailPage uuid={id} />;
      return <ServersPage />;
    case 'drives':
      return <DrivesPage />;
    case 'library':
      return <LibraryPage />;
    case 'networking':
      return <NetworkingPage />;
    case 'firewall':
      return id ? <PolicyPage uuid={id} /> : <FirewallPage />;
    case 'keys':
      return <KeysPage />;
    case 'tags':
      return <TagsPage />;
    case 'sharing':
      return <SharingPage />;
    case 'jobs':
      return <JobsPage />;
    case 'logs':
      return <LogsPage />;
    case 'account':
      return <AccountPage />;
    default:
      return <p>There is no page here. Choose a section.</p>;
  }
}

const LOST = 'Connection to opensigma lost — reconnecting…';

/**
 * Said while the page cannot hear the API. Fixed over the page's foot and deaf to the pointer, so it moves nothing
 * and covers no control while it comes and goes; the lists read themselves again when the API is back.
 */
function ConnectionLost() {
  const [lost, setLost] = useState(false);
  useEffect(() => watchConnection(setLost), []);
  return lost ? (
    <div class="offline" role="alert" aria-label="Connection">
      {LOST}
    </div>
  ) : null;
}

// The first page is most often the server list: its servers are asked for with the sign-in check, not after it.
const first = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
if (first.length === 0 || (first[0] === 'servers' && first.length === 1)) prefetch(serversPath({ offset: 0 }));

function App() {
  const [me, setMe] = useState<Me | null | 'checking' | 'unreachable'>('checking');
  const parts = useHash();
  useEffect(() => {
    whenSignedOut(() => setMe(null));
    let tries = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = () =>
      get<ProfileDoc>('/profile/').then(
        (p) => setMe({ uuid: String(p.uuid), email: String(p.email) }),
        (e) => {
          // Only the API's own answer says "not signed in"; no answer at all is an API to wait for.
          if (e instanceof ApiFailure && e.status < 500) return setMe(null);
          setMe('unreachable');
          timer = setTimeout(check, Math.min(8000, 500 * 2 ** tries++));
        },
      );
    void check();
    return () => clearTimeout(timer);
  }, []);
  useEffect(() => {
    if (me && me !== 'checking' && me !== 'unreachable') startNotifications();
    else stopNotifications();
  }, [me]);
  useEffect(() => {
    const name = SECTIONS.find(([k]) => k === (parts[0] ?? 'servers'))?.[1];
    document.title = me && typeof me === 'object' && name ? `${name} · opensigma` : 'opensigma';
  }, [parts, me]);
  if (me === 'checking') return <p role="status">Loading…</p>;
  if (me === 'unreachable')
    return (
      <div class="offline" role="alert" aria-label="Connection">
        {LOST}
      </div>
    );
  if (!me) return <SignIn onIn={setMe} />;
  const signOut = async () => {
    await post('/accounts/action/?do=logout').catch(() => {});
    stopNotifications();
    setMe(null);
    location.hash = '';
  };
  const current = parts[0] ?? 'servers';
  return (
    <SessionContext.Provider value={me}>
      <header>
        <p class="brand">opensigma</p>
        <nav aria-label="Sections">
          <ul>
            {SECTIONS.map(([k, label]) => (
              <li>
                <a href={`#/${k}`} aria-current={current === k ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <p class="who">
          Signed in as <span>{me.email}</span>{' '}
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </p>
      </header>
      <ConnectionLost />
      <main>
        <Page parts={parts} />
      </main>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
