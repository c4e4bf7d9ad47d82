import { Type, type Static, type TSchema } from 'typebox';

/** JSON Schemas shared by routes: they validate input at the edge and document the API in /openapi.json. */
export const Uuid = Type.String({ pattern: '^[0-9a-fA-F-]{36}$' });
export const UuidParams = Type.Object({ uuid: Uuid });
export const Ref = Type.Object({ resource_uri: Type.String(), uuid: Type.String() });

/** A list parameter may be repeated (?name__contains=a&name__contains=b): repeats are AND-ed. */
const listParam = Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())]));
const count = (description: string) => {
  const n = Type.String({ pattern: '^\\d+$', description });
  return Type.Optional(Type.Union([n, Type.Array(n)]));
};
export const ListQuerystring = Type.Object(
  {
    limit: count('page size; 0 = all (default 20)'),
    offset: count('index of the first object'),
    fields: listParam,
    name: listParam,
    name__contains: listParam,
    uuid: listParam,
    tag: listParam,
    tag__name: listParam,
    status: listParam,
    order_by: listParam,
  },
  { additionalProperties: true },
);

export const ListEnvelope = (item: TSchema) =>
  Type.Object({
    meta: Type.Object({ limit: Type.Integer(), offset: Type.Integer(), total_count: Type.Integer() }),
    objects: Type.Array(item),
  });

/** Create bodies: {"objects": [...]}, a bare list, or one object. Field rules are checked by the domain. */
export const CreateBody = Type.Union([
  Type.Object({ objects: Type.Array(Type.Object({}, { additionalProperties: true })) }, { additionalProperties: true }),
  Type.Array(Type.Object({}, { additionalProperties: true })),
  Type.Object({}, { additionalProperties: true }),
]);
export const AnyObject = Type.Object({}, { additionalProperties: true });
export const ActionBody = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: true })]);

export const ErrorArray = Type.Array(
  Type.Object({ error_message: Type.String(), error_point: Type.Union([Type.String(), Type.Null()]), error_type: Type.String() }),
);

/**
 * Keys in CloudSigma's (alphabetical) order. Only `action` (the first) is required: the serialiser writes required
 * keys before optional ones, which would put console_url after uuid; and `action` tells a reply from a clone's server.
 */
export const ActionReply = Type.Object(
  {
    action: Type.String(),
    console_url: Type.Optional(Type.String({ description: 'open_console: csconsole://HOST:PORT' })),
    result: Type.Optional(Type.String({ description: 'success' })),
    uuid: Type.Optional(Type.String()),
    vnc_url: Type.Optional(Type.String({ description: 'open_vnc: vnc://HOST:PORT' })),
  },
  { additionalProperties: true },
);

const Io = (keys: string[]) => Type.Object(Object.fromEntries(keys.map((k) => [k, Type.Integer()])));
const NicIo = Io(['bytes_recv', 'bytes_sent', 'packets_recv', 'packets_sent']);
const DriveIo = Io([
  'bytes_read',
  'bytes_written',
  'count_flush',
  'count_read',
  'count_written',
  'total_time_ns_flush',
  'total_time_ns_read',
  'total_time_ns_write',
]);
/** `nullable` rather than anyOf with null: the serialiser writes it without running a validator per value. */
const Nullable = <T extends TSchema>(t: T) => Type.Unsafe<Static<T> | null>({ ...t, nullable: true });
const IpConf = Nullable(Type.Object({ conf: Type.String(), ip: Nullable(Ref) }));
const NicRuntime = Type.Object({
  interface_type: Type.String(),
  io: NicIo,
  ip_v4: Nullable(Ref),
  ip_v6: Nullable(Type.String()),
  rx_foreign: Type.Integer(),
  rx_local: Type.Integer(),
  tx_foreign: Type.Integer(),
  tx_local: Type.Integer(),
});

export const ServerRuntime = Nullable(
  Type.Object({ active_since: Type.String(), nics: Type.Array(Type.Object({ ...NicRuntime.properties, mac: Type.String() })) }),
);

export const Server = Type.Object(
  {
    allocation_pool: Nullable(Type.String()),
    auto_start: Type.Boolean(),
    context: Type.Boolean(),
    cpu: Type.Integer(),
    cpu_model: Nullable(Type.String()),
    cpu_type: Type.String(),
    cpus_instead_of_cores: Type.Boolean(),
    drives: Type.Array(
      Type.Object({
        boot_order: Nullable(Type.Integer()),
        dev_channel: Type.String(),
        device: Type.String(),
        drive: Ref,
        runtime: Nullable(Type.Object({ io: DriveIo })),
      }),
    ),
    enable_numa: Type.Boolean(),
    epcs: Type.Array(Type.Object({ size: Type.Integer() })),
    gpus: Type.Array(Type.Object({ gpu: Type.Any(), model: Type.String() })),
    grantees: Type.Array(Type.Any()),
    hv_relaxed: Type.Boolean(),
    hv_tsc: Type.Boolean(),
    hypervisor: Type.String(),
    is_grey: Type.Boolean(),
    jobs: Type.Array(Type.Any()),
    mem: Type.Integer(),
    meta: Type.Record(Type.String(), Type.String()),
    name: Type.String(),
    nics: Type.Array(
      Type.Object({
        boot_order: Nullable(Type.Integer()),
        firewall_policy: Nullable(Ref),
        ip_v4_conf: IpConf,
        ip_v6_conf: IpConf,
        mac: Type.String(),
        model: Type.String(),
        runtime: Nullable(NicRuntime),
        vlan: Nullable(Ref),
      }),
    ),
    owner: Nullable(Ref),
    permissions: Type.Array(Type.Any()),
    pubkeys: Type.Array(Ref),
    requirements: Type.Array(Type.Any()),
    resource_uri: Type.String(),
    runtime: ServerRuntime,
    smp: Type.Integer(),
    status: Type.String(),
    tags: Type.Array(Ref),
    uuid: Type.String(),
    vnc_password: Nullable(Type.String()),
  },
  { additionalProperties: true },
);
