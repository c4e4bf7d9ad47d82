import os from 'node:os';
import path from 'node:path';
import { isIpv4, parsePool, poolsOverlap } from './domain/cidr.ts';
import { DEFAULT_QUOTAS, type Quotas } from './domain/quotas.ts';

/** Every setting opensigma reads. Each one is an environment variable and a matching `serve` flag. */
export interface Config {
  listenHost: string;
  listenPort: number;
  dataDir: string;
  databaseUrl: string | null;
  driver: 'sim' | 'qemu';
  simDelayMs: number;
  simHosts: number;
  simHostCpuMhz: number;
  simHostMem: number;
  acpiTimeoutS: number;
  publicHost: string;
  adminEmail: string | null;
  adminPassword: string | null;
  role: 'all' | 'api';
  hostName: string;
  hostCpuMhz: number | null;
  hostMem: number | null;
  rateLimits: RateLimits;
  bodyLimit: number;
  /** slow clients: see SETTINGS */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxAnonymousConnections: number;
  loginFailuresPerSource: number;
  loginFailuresPerAccount: number;
  defaultCpuType: string;
  wireCacheMb: number;
  reconcileIntervalMs: number;
  subscriptionSweepMs: number;
  heartbeatTimeoutMs: number;
  dhcpPool: string;
  ipPool: string;
  vlanPool: number;
  nameservers: string[];
  guestEgress: boolean;
  libraryDir: string | null;
  remoteSnapshotDir: string;
  storageDir: string;
  logLevel: string;
  logFormat: 'json' | 'pretty';
  onExit: 'leave' | 'shutdown';
  tlsCert: string | null;
  tlsKey: string | null;
  quotas: Quotas;
  faultsFile: string | null;
  requestLog: number;
  /** repeatable uuids, MACs, passwords, tokens and keys: see src/domain/random.ts */
  seed: string | null;
}

export interface RateLimits {
  GET: number;
  POST: number;
  PUT: number;
  DELETE: number;
}

/** name, env var, description, default: the README table is generated from the same list. */
export const SETTINGS: Array<{ key: keyof Config; env: string; flag: string; help: string }> = [
  { key: 'listenHost', env: 'OPENSIGMA_LISTEN', flag: '--listen <host:port>', help: 'address the API listens on (default 127.0.0.1:8080)' },
  { key: 'dataDir', env: 'OPENSIGMA_DATA', flag: '--data <dir>', help: 'data directory: SQLite database, drive images, run files (default ./data)' },
  {
    key: 'databaseUrl',
    env: 'OPENSIGMA_DATABASE_URL',
    flag: '--database-url <url>',
    help: 'postgres://... to keep state in PostgreSQL; unset = SQLite in the data dir',
  },
  { key: 'driver', env: 'OPENSIGMA_DRIVER', flag: '--driver <sim|qemu>', help: 'hypervisor driver (default sim)' },
  { key: 'simDelayMs', env: 'OPENSIGMA_SIM_DELAY_MS', flag: '--sim-delay-ms <ms>', help: 'length of the simulated starting/stopping phases (default 1000)' },
  { key: 'simHosts', env: 'OPENSIGMA_SIM_HOSTS', flag: '--sim-hosts <n>', help: 'number of simulated hosts a sim compute node models (default 3)' },
  { key: 'simHostCpuMhz', env: 'OPENSIGMA_SIM_HOST_CPU_MHZ', flag: '--sim-host-cpu-mhz <mhz>', help: 'CPU capacity of each simulated host (default 64000)' },
  { key: 'simHostMem', env: 'OPENSIGMA_SIM_HOST_MEM', flag: '--sim-host-mem <bytes>', help: 'memory capacity of each simulated host (default 256 GiB)' },
  {
    key: 'acpiTimeoutS',
    env: 'OPENSIGMA_ACPI_TIMEOUT_S',
    flag: '--acpi-timeout-s <s>',
    help: 'how long shutdown presses the ACPI button before giving up (default 60)',
  },
  { key: 'publicHost', env: 'OPENSIGMA_PUBLIC_HOST', flag: '--public-host <host>', help: 'host put in console_url / vnc_url (default: the listen host)' },
  { key: 'adminEmail', env: 'OPENSIGMA_ADMIN_EMAIL', flag: '--admin-email <email>', help: 'ensure this user exists at start' },
  { key: 'adminPassword', env: 'OPENSIGMA_ADMIN_PASSWORD', flag: '--admin-password <pw>', help: 'password of OPENSIGMA_ADMIN_EMAIL' },
  { key: 'role', env: 'OPENSIGMA_ROLE', flag: '--role <all|api>', help: 'api = serve the API only, run no compute host (default all)' },
  { key: 'hostName', env: 'OPENSIGMA_HOST_NAME', flag: '--host-name <name>', help: 'name of this compute host (default: the machine hostname)' },
  { key: 'hostCpuMhz', env: 'OPENSIGMA_HOST_CPU_MHZ', flag: '--host-cpu-mhz <mhz>', help: 'CPU capacity of this compute host (default: measured)' },
  { key: 'hostMem', env: 'OPENSIGMA_HOST_MEM', flag: '--host-mem <bytes>', help: 'memory capacity of this compute host (default: measured)' },
  {
    key: 'dhcpPool',
    env: 'OPENSIGMA_DHCP_POOL',
    flag: '--dhcp-pool <cidr>',
    help: 'addresses handed to dhcp NICs (default 127.202.0.0/16: with the qemu driver, loopback addresses forwarded to the guest, see docs/qemu.md)',
  },
  {
    key: 'ipPool',
    env: 'OPENSIGMA_IP_POOL',
    flag: '--ip-pool <cidr>',
    help: 'public IPv4 addresses sold as ip subscriptions (default 127.201.0.0/24); must not overlap the DHCP pool',
  },
  { key: 'vlanPool', env: 'OPENSIGMA_VLAN_POOL', flag: '--vlan-pool <n>', help: 'how many private VLANs can be sold as vlan subscriptions (default 100)' },
  {
    key: 'nameservers',
    env: 'OPENSIGMA_NAMESERVERS',
    flag: '--nameservers <ips>',
    help: 'comma-separated nameservers shown on IPs and in the server context (default: the pool gateway)',
  },
  {
    key: 'guestEgress',
    env: 'OPENSIGMA_GUEST_EGRESS',
    flag: '--guest-egress <0|1>',
    help: 'qemu: 1 lets guests open connections out of the host through their public NIC (default 0: they only answer)',
  },
  {
    key: 'libraryDir',
    env: 'OPENSIGMA_LIBRARY_DIR',
    flag: '--library-dir <dir>',
    help: 'extra folder of library drive descriptions (*.json) and images, beside ./library and <data>/library',
  },
  {
    key: 'storageDir',
    env: 'OPENSIGMA_STORAGE_DIR',
    flag: '--storage-dir <dir>',
    help: 'where drive images live; every node mounts it at the same path (default <data>/drives)',
  },
  {
    key: 'remoteSnapshotDir',
    env: 'OPENSIGMA_REMOTE_SNAPSHOT_DIR',
    flag: '--remote-snapshot-dir <dir>',
    help: 'where remote snapshots keep their copies of drives, best on other storage than the drives (default <data>/remote-snapshots)',
  },
  { key: 'reconcileIntervalMs', env: 'OPENSIGMA_RECONCILE_MS', flag: '--reconcile-ms <ms>', help: 'period of the driver reconciliation loop (default 5000)' },
  {
    key: 'subscriptionSweepMs',
    env: 'OPENSIGMA_SUBSCRIPTION_SWEEP_MS',
    flag: '--subscription-sweep-ms <ms>',
    help: 'how often ended subscriptions are renewed or expired (their IPs and VLANs freed) in the background (default 60000)',
  },
  {
    key: 'wireCacheMb',
    env: 'OPENSIGMA_WIRE_CACHE_MB',
    flag: '--wire-cache-mb <MiB>',
    help: 'memory for the serialised answers of unchanged servers that lists and GETs reuse; 0 turns it off (default 32)',
  },
  {
    key: 'bodyLimit',
    env: 'OPENSIGMA_BODY_LIMIT',
    flag: '--body-limit <bytes>',
    help: 'largest JSON request body (default 1 MiB; drive uploads are streamed and not bound by it)',
  },
  {
    key: 'headersTimeoutMs',
    env: 'OPENSIGMA_HEADERS_TIMEOUT_MS',
    flag: '--headers-timeout-ms <ms>',
    help: 'a request line and headers not received whole within this are answered 408 and the connection closed (default 10000)',
  },
  {
    key: 'requestTimeoutMs',
    env: 'OPENSIGMA_REQUEST_TIMEOUT_MS',
    flag: '--request-timeout-ms <ms>',
    help: 'a JSON request body not received whole within this is answered 408 (default 30000; drive uploads are bound by the idle timeout instead)',
  },
  {
    key: 'idleTimeoutMs',
    env: 'OPENSIGMA_IDLE_TIMEOUT_MS',
    flag: '--idle-timeout-ms <ms>',
    help: 'a connection on which nothing moves for this long, mid-request or mid-upload, is closed (default 60000)',
  },
  {
    key: 'keepAliveTimeoutMs',
    env: 'OPENSIGMA_KEEPALIVE_TIMEOUT_MS',
    flag: '--keepalive-timeout-ms <ms>',
    help: "how long a kept-alive connection waits for its next request (default 10000; above a load balancer's idle timeout if behind one)",
  },
  {
    key: 'maxAnonymousConnections',
    env: 'OPENSIGMA_MAX_ANONYMOUS_CONNECTIONS',
    flag: '--max-anonymous-connections <n>',
    help: 'connections that have not yet authenticated, per API node; beyond it the oldest is closed (default 1000)',
  },
  {
    key: 'loginFailuresPerSource',
    env: 'OPENSIGMA_LOGIN_FAILURES_PER_SOURCE',
    flag: '--login-failures-per-source <n>',
    help: 'wrong passwords one address may send per 5 minutes before its logins answer 429 (default 10)',
  },
  {
    key: 'loginFailuresPerAccount',
    env: 'OPENSIGMA_LOGIN_FAILURES_PER_ACCOUNT',
    flag: '--login-failures-per-account <n>',
    help: 'wrong passwords per account per 5 minutes, from all addresses, before its logins answer 429 to addresses it never logged in from (default 50)',
  },
  {
    key: 'defaultCpuType',
    env: 'OPENSIGMA_DEFAULT_CPU_TYPE',
    flag: '--default-cpu-type <amd|intel>',
    help: "cpu_type of servers created without one: the CPUs of this installation's hosts (default amd, as CloudSigma)",
  },
  { key: 'rateLimits', env: 'OPENSIGMA_RATE_GET', flag: '--rate-get <n>', help: 'GET requests per account per minute, across all API nodes (default 10000)' },
  { key: 'rateLimits', env: 'OPENSIGMA_RATE_POST', flag: '--rate-post <n>', help: 'POST requests per account per minute (default 10000)' },
  { key: 'rateLimits', env: 'OPENSIGMA_RATE_PUT', flag: '--rate-put <n>', help: 'PUT requests per account per minute (default 10000)' },
  { key: 'rateLimits', env: 'OPENSIGMA_RATE_DELETE', flag: '--rate-delete <n>', help: 'DELETE requests per account per minute (default 1000)' },
  { key: 'tlsCert', env: 'OPENSIGMA_TLS_CERT', flag: '--tls-cert <file>', help: 'PEM certificate: serve HTTPS instead of HTTP (with OPENSIGMA_TLS_KEY)' },
  { key: 'tlsKey', env: 'OPENSIGMA_TLS_KEY', flag: '--tls-key <file>', help: 'PEM private key of OPENSIGMA_TLS_CERT' },
  {
    key: 'heartbeatTimeoutMs',
    env: 'OPENSIGMA_HEARTBEAT_TIMEOUT_MS',
    flag: '--heartbeat-timeout-ms <ms>',
    help: 'a compute host whose agent is silent this long is marked down and its servers unavailable (default 15000)',
  },
  {
    key: 'onExit',
    env: 'OPENSIGMA_ON_EXIT',
    flag: '--on-exit <leave|shutdown>',
    help: 'what a compute host does with its guests when it stops: leave them running (adopted at the next start) or shut them down (default leave)',
  },
  {
    key: 'faultsFile',
    env: 'OPENSIGMA_FAULTS_FILE',
    flag: '--faults-file <file>',
    help: 'JSON file of fault and latency rules set at start (docs/test-cloud.md)',
  },
  {
    key: 'requestLog',
    env: 'OPENSIGMA_REQUEST_LOG',
    flag: '--request-log <n>',
    help: 'keep the last n requests and answers, redacted, for the administrator (default 0 = off)',
  },
  {
    key: 'seed',
    env: 'OPENSIGMA_SEED',
    flag: '--seed <text>',
    help: 'repeat generated uuids, MACs, passwords, tokens and keys from run to run, for recorded fixtures (never in production)',
  },
  { key: 'logFormat', env: 'OPENSIGMA_LOG_FORMAT', flag: '--log-format <json|pretty>', help: 'json lines (default) or pretty, one readable line per entry' },
  { key: 'logLevel', env: 'OPENSIGMA_LOG_LEVEL', flag: '--log-level <level>', help: 'pino log level (default info)' },
  { key: 'quotas', env: 'OPENSIGMA_QUOTA_SERVERS', flag: '--quota-servers <n>', help: 'servers one account may hold (default 200; 0 = no limit)' },
  { key: 'quotas', env: 'OPENSIGMA_QUOTA_DRIVES', flag: '--quota-drives <n>', help: 'drives one account may hold (default 400; 0 = no limit)' },
  {
    key: 'quotas',
    env: 'OPENSIGMA_QUOTA_DRIVE_BYTES',
    flag: '--quota-drive-bytes <bytes>',
    help: "total size of one account's drives (default 2 TiB; 0 = no limit)",
  },
  { key: 'quotas', env: 'OPENSIGMA_QUOTA_IPS', flag: '--quota-ips <n>', help: 'public IPs one account may hold (default 16; 0 = no limit)' },
  { key: 'quotas', env: 'OPENSIGMA_QUOTA_VLANS', flag: '--quota-vlans <n>', help: 'VLANs one account may hold (default 8; 0 = no limit)' },
  {
    key: 'quotas',
    env: 'OPENSIGMA_QUOTA_SUBSCRIPTIONS',
    flag: '--quota-subscriptions <n>',
    help: 'subscriptions not yet expired one account may hold (default 100; 0 = no limit)',
  },
];

/**
 * Default address pools, in 127.0.0.0/8: with the qemu driver and no privileges, a guest's public address is a
 * loopback address of the host that QEMU forwards into the guest (docs/qemu.md). Several installations on one
 * machine need pools of their own.
 */
export const DEFAULT_IP_POOL = '127.201.0.0/24';
export const DEFAULT_DHCP_POOL = '127.202.0.0/16';

function flag(v: string | undefined, name: string): boolean {
  if (v === undefined || v === '' || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  throw new Error(`${name} must be 0 or 1, not ${v}`);
}

function int(v: string | undefined, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`not a number: ${v}`);
  return n;
}

function count(v: string | undefined, fallback: number, name: string): number {
  const n = int(v, fallback);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (0 = no limit), not ${v}`);
  return n;
}

function cpuType(v: string): string {
  if (v !== 'amd' && v !== 'intel') throw new Error(`OPENSIGMA_DEFAULT_CPU_TYPE must be amd or intel, not ${v}`);
  return v;
}

/** A limit that must be a positive whole number: 0 would switch a protection off. */
function positive(get: (name: string) => string | undefined, name: string, fallback: number): number {
  const n = int(get(name), fallback);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, not ${get(name)}`);
  return n;
}

/** Builds the configuration from environment variables, overridden by explicit values (CLI flags). */
export function loadConfig(overrides: Record<string, string | undefined> = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const get = (name: string): string | undefined => overrides[name] ?? env[name];
  const listen = get('OPENSIGMA_LISTEN') ?? '127.0.0.1:8080';
  const colon = listen.lastIndexOf(':');
  const listenHost = colon > 0 ? listen.slice(0, colon) : listen;
  const listenPort = colon > 0 ? int(listen.slice(colon + 1), 8080) : 8080;
  const driver = (get('OPENSIGMA_DRIVER') ?? 'sim') as Config['driver'];
  if (driver !== 'sim' && driver !== 'qemu') throw new Error(`OPENSIGMA_DRIVER must be sim or qemu, not ${driver}`);
  const role = (get('OPENSIGMA_ROLE') ?? 'all') as Config['role'];
  if (role !== 'all' && role !== 'api') throw new Error(`OPENSIGMA_ROLE must be all or api, not ${role}`);
  const onExit = (get('OPENSIGMA_ON_EXIT') || 'leave') as Config['onExit'];
  if (onExit !== 'leave' && onExit !== 'shutdown') throw new Error(`OPENSIGMA_ON_EXIT must be leave or shutdown, not ${onExit}`);
  const logFormat = (get('OPENSIGMA_LOG_FORMAT') || 'json') as Config['logFormat'];
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new Error(`OPENSIGMA_LOG_FORMAT must be json or pretty, not ${logFormat}`);
  const hostCpu = get('OPENSIGMA_HOST_CPU_MHZ');
  const hostMem = get('OPENSIGMA_HOST_MEM');
  return {
    listenHost,
    listenPort,
    dataDir: path.resolve(get('OPENSIGMA_DATA') ?? './data'),
    databaseUrl: get('OPENSIGMA_DATABASE_URL') || null,
    driver,
    simDelayMs: int(get('OPENSIGMA_SIM_DELAY_MS'), 1000),
    simHosts: int(get('OPENSIGMA_SIM_HOSTS'), 3),
    simHostCpuMhz: int(get('OPENSIGMA_SIM_HOST_CPU_MHZ'), 64000),
    simHostMem: int(get('OPENSIGMA_SIM_HOST_MEM'), 256 * 2 ** 30),
    acpiTimeoutS: int(get('OPENSIGMA_ACPI_TIMEOUT_S'), 60),
    publicHost: get('OPENSIGMA_PUBLIC_HOST') || (listenHost === '0.0.0.0' || listenHost === '::' ? '127.0.0.1' : listenHost),
    adminEmail: get('OPENSIGMA_ADMIN_EMAIL') || null,
    adminPassword: get('OPENSIGMA_ADMIN_PASSWORD') || null,
    role,
    hostName: get('OPENSIGMA_HOST_NAME') || os.hostname(),
    hostCpuMhz: hostCpu ? int(hostCpu, 0) : null,
    hostMem: hostMem ? int(hostMem, 0) : null,
    rateLimits: {
      GET: int(get('OPENSIGMA_RATE_GET'), 10000),
      POST: int(get('OPENSIGMA_RATE_POST'), 10000),
      PUT: int(get('OPENSIGMA_RATE_PUT'), 10000),
      DELETE: int(get('OPENSIGMA_RATE_DELETE'), 1000),
    },
    bodyLimit: int(get('OPENSIGMA_BODY_LIMIT'), 1024 * 1024),
    headersTimeoutMs: positive(get, 'OPENSIGMA_HEADERS_TIMEOUT_MS', 10_000),
    requestTimeoutMs: positive(get, 'OPENSIGMA_REQUEST_TIMEOUT_MS', 30_000),
    idleTimeoutMs: positive(get, 'OPENSIGMA_IDLE_TIMEOUT_MS', 60_000),
    keepAliveTimeoutMs: positive(get, 'OPENSIGMA_KEEPALIVE_TIMEOUT_MS', 10_000),
    maxAnonymousConnections: positive(get, 'OPENSIGMA_MAX_ANONYMOUS_CONNECTIONS', 1000),
    loginFailuresPerSource: positive(get, 'OPENSIGMA_LOGIN_FAILURES_PER_SOURCE', 10),
    loginFailuresPerAccount: positive(get, 'OPENSIGMA_LOGIN_FAILURES_PER_ACCOUNT', 50),
    defaultCpuType: cpuType(get('OPENSIGMA_DEFAULT_CPU_TYPE') || 'amd'),
    wireCacheMb: int(get('OPENSIGMA_WIRE_CACHE_MB'), 32),
    reconcileIntervalMs: int(get('OPENSIGMA_RECONCILE_MS'), 5000),
    subscriptionSweepMs: int(get('OPENSIGMA_SUBSCRIPTION_SWEEP_MS'), 60000),
    heartbeatTimeoutMs: int(get('OPENSIGMA_HEARTBEAT_TIMEOUT_MS'), 15000),
    dhcpPool: get('OPENSIGMA_DHCP_POOL') || DEFAULT_DHCP_POOL,
    guestEgress: flag(get('OPENSIGMA_GUEST_EGRESS'), 'OPENSIGMA_GUEST_EGRESS'),
    ...networkSettings(get),
    libraryDir: get('OPENSIGMA_LIBRARY_DIR') ? path.resolve(get('OPENSIGMA_LIBRARY_DIR')!) : null,
    storageDir: path.resolve(get('OPENSIGMA_STORAGE_DIR') || path.join(get('OPENSIGMA_DATA') ?? './data', 'drives')),
    remoteSnapshotDir: path.resolve(get('OPENSIGMA_REMOTE_SNAPSHOT_DIR') || path.join(get('OPENSIGMA_DATA') ?? './data', 'remote-snapshots')),
    logLevel: get('OPENSIGMA_LOG_LEVEL') || 'info',
    logFormat,
    onExit,
    tlsCert: get('OPENSIGMA_TLS_CERT') || null,
    tlsKey: get('OPENSIGMA_TLS_KEY') || null,
    faultsFile: get('OPENSIGMA_FAULTS_FILE') ? path.resolve(get('OPENSIGMA_FAULTS_FILE')!) : null,
    requestLog: count(get('OPENSIGMA_REQUEST_LOG'), 0, 'OPENSIGMA_REQUEST_LOG'),
    seed: get('OPENSIGMA_SEED') || null,
    quotas: {
      servers: count(get('OPENSIGMA_QUOTA_SERVERS'), DEFAULT_QUOTAS.servers, 'OPENSIGMA_QUOTA_SERVERS'),
      drives: count(get('OPENSIGMA_QUOTA_DRIVES'), DEFAULT_QUOTAS.drives, 'OPENSIGMA_QUOTA_DRIVES'),
      driveBytes: count(get('OPENSIGMA_QUOTA_DRIVE_BYTES'), DEFAULT_QUOTAS.driveBytes, 'OPENSIGMA_QUOTA_DRIVE_BYTES'),
      ips: count(get('OPENSIGMA_QUOTA_IPS'), DEFAULT_QUOTAS.ips, 'OPENSIGMA_QUOTA_IPS'),
      vlans: count(get('OPENSIGMA_QUOTA_VLANS'), DEFAULT_QUOTAS.vlans, 'OPENSIGMA_QUOTA_VLANS'),
      subscriptions: count(get('OPENSIGMA_QUOTA_SUBSCRIPTIONS'), DEFAULT_QUOTAS.subscriptions, 'OPENSIGMA_QUOTA_SUBSCRIPTIONS'),
    },
  };
}

/** The address pools, checked at start: a public address must never also be handed out by DHCP. */
function networkSettings(get: (name: string) => string | undefined): Pick<Config, 'ipPool' | 'vlanPool' | 'nameservers'> {
  const ipPool = parsePool(get('OPENSIGMA_IP_POOL') || DEFAULT_IP_POOL, 'OPENSIGMA_IP_POOL');
  const dhcp = parsePool(get('OPENSIGMA_DHCP_POOL') || DEFAULT_DHCP_POOL, 'OPENSIGMA_DHCP_POOL');
  if (poolsOverlap(ipPool, dhcp)) throw new Error(`OPENSIGMA_IP_POOL ${ipPool.cidr} overlaps OPENSIGMA_DHCP_POOL ${dhcp.cidr}`);
  const vlanPool = int(get('OPENSIGMA_VLAN_POOL'), 100);
  if (!Number.isInteger(vlanPool) || vlanPool < 0 || vlanPool > 4094) throw new Error(`OPENSIGMA_VLAN_POOL must be a count from 0 to 4094, not ${vlanPool}`);
  const ns = (get('OPENSIGMA_NAMESERVERS') || ipPool.gateway)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of ns) if (!isIpv4(n)) throw new Error(`OPENSIGMA_NAMESERVERS must be IPv4 addresses, not ${n}`);
  return { ipPool: ipPool.cidr, vlanPool, nameservers: ns };
}
