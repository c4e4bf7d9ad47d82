import type { Services } from '../services.ts';
import { parsePool } from '../domain/cidr.ts';
import { escapeAscii, PyFloat, pyFloat, pyJson } from '../domain/python-json.ts';
import type { IpConf, ServerDef } from '../domain/server-definition.ts';
import type { ContextReply, ContextRequest } from '../hypervisor/driver.ts';

/**
 * The server context protocol, guest side (CloudSigma docs "Server Context"): the guest writes `<\n` PATH `\n>` on
 * its second serial port and reads one line back followed by EOT.
 *
 * - `ContextRequest`: what the guest wrote between `<` and `>`: the path, with or without the surrounding newlines
 *   (LF or CRLF). Empty = the whole context; `name`, `/meta/ssh_public_key`, `/nics/0/mac`, `/global_context/key`.
 * - `ContextReply`: the complete bytes to write back, `value + "\n" + EOT` (always ASCII; it always carries the EOT).
 */

const EOT = '\x04';
const end = (line: string): ContextReply => `${line}\n${EOT}`;

/** A guest's tty hands us bytes; a path in UTF-8 read as latin1 is decoded back. */
function decodePath(request: string): string {
  const trimmed = request.replace(/^[\r\n\s]+|[\r\n\s]+$/g, '');
  if (!/[\u0080-\u00ff]/.test(trimmed) || /[^\u0000-\u00ff]/.test(trimmed)) return trimmed;
  const utf8 = Buffer.from(trimmed, 'latin1').toString('utf8');
  return utf8.includes('\ufffd') ? trimmed : utf8;
}

export async function globalContextOf(svc: Services, user: string | null): Promise<Record<string, string>> {
  if (!user) return {};
  return svc.store.globalContexts.of(user);
}

/**
 * The context document of a server: its definition without owner, status, runtime and the like, with drives,
 * addresses (the current DHCP lease for dhcp NICs), VLANs and public keys expanded, plus the account's global
 * context. Key order follows the transcripts (response_context_all).
 */
export async function contextDocument(svc: Services, serverUuid: string): Promise<Record<string, unknown> | null> {
  const s = await svc.store.servers.get(serverUuid);
  if (!s) return null;
  const d: ServerDef = s.doc;
  const ipPool = parsePool(svc.config.ipPool);
  const dhcpPool = parsePool(svc.config.dhcpPool);
  const leases = new Map((await svc.store.leases.ofServer(serverUuid)).map((l) => [l.mac, l.ip]));
  const drives = new Map((await svc.store.drives.getMany(d.drives.map((a) => a.drive))).map((x) => [x.uuid, x.doc]));
  const keys = await svc.store.keypairs.getMany(d.pubkeys);

  const expandIp = async (conf: IpConf | null, mac: string) => {
    if (!conf) return null;
    let ip: unknown = null;
    if (conf.conf === 'static' && conf.ip) {
      const owned = await svc.store.ips.get(conf.ip);
      ip = {
        uuid: conf.ip,
        tags: owned?.doc.tags ?? [],
        nameservers: svc.config.nameservers,
        netmask: ipPool.prefix,
        meta: owned?.doc.meta ?? {},
        gateway: ipPool.gateway,
      };
    } else if (conf.conf === 'dhcp' && leases.has(mac)) {
      ip = { uuid: leases.get(mac), tags: [], nameservers: svc.config.nameservers, netmask: dhcpPool.prefix, meta: {}, gateway: dhcpPool.gateway };
    }
    return { ip, conf: conf.conf };
  };
  const policies = new Map(
    (await svc.store.fwpolicies.getMany(d.nics.flatMap((n) => (n.firewall_policy ? [n.firewall_policy] : [])))).map((p) => [p.uuid, p.doc]),
  );
  const nics = [];
  for (const n of d.nics) {
    const vlan = n.vlan ? await svc.store.vlans.get(n.vlan) : undefined;
    const policy = n.firewall_policy ? policies.get(n.firewall_policy) : undefined;
    nics.push({
      boot_order: n.boot_order,
      vlan: n.vlan ? { uuid: n.vlan, tags: vlan?.doc.tags ?? [], meta: vlan?.doc.meta ?? {} } : null,
      ip_v4_conf: await expandIp(n.ip_v4_conf, n.mac),
      mac: n.mac,
      model: n.model,
      ip_v6_conf: await expandIp(n.ip_v6_conf, n.mac),
      // Only on a NIC that has one (the transcripts predate policies): the rules themselves, for a guest to read.
      ...(policy ? { firewall_policy: { uuid: policy.uuid, name: policy.name, meta: policy.meta, tags: policy.tags, rules: policy.rules } } : {}),
    });
  }
  return {
    cpus_instead_of_cores: d.cpus_instead_of_cores,
    enable_numa: d.enable_numa,
    meta: {
      ...d.meta,
      ssh_public_key: guestSshKeys(
        d.meta.ssh_public_key,
        keys.map((k) => k.doc.public_key),
      ),
    },
    pubkeys: keys.map((k) => ({ uuid: k.uuid, name: k.doc.name, public_key: k.doc.public_key, fingerprint: k.doc.fingerprint })),
    requirements: d.requirements,
    is_grey: d.is_grey,
    nics,
    smp: d.smp,
    vnc_password: d.vnc_password,
    tags: d.tags,
    mem: d.mem,
    mem_perf_threshold: pyFloat(0),
    cpu_model: d.cpu_model,
    drives: d.drives.map((a) => {
      const x = drives.get(a.drive);
      return {
        device: a.device,
        dev_channel: a.dev_channel,
        drive: x
          ? {
              uuid: x.uuid,
              tags: x.tags,
              media: x.media,
              name: x.name,
              storage_type: x.storage_type,
              meta: x.meta,
              allow_multimount: x.allow_multimount,
              licenses: x.licenses,
              affinities: x.affinities,
              size: x.size,
            }
          : null,
        boot_order: a.boot_order,
      };
    }),
    hv_relaxed: d.hv_relaxed,
    cpu_perf_threshold: pyFloat(0),
    uuid: d.uuid,
    name: d.name,
    global_context: await globalContextOf(svc, s.owner),
    hypervisor: d.hypervisor,
    hv_tsc: d.hv_tsc,
    cpu_type: d.cpu_type,
    cpu: d.cpu,
  };
}

/**
 * What the context says in meta.ssh_public_key: the server's own meta value, then every key of its pubkeys not
 * already in it, one per line; '' when there is none. cloud-init's CloudSigma datasource reads only this key (and
 * fails when it is missing), so this is how pubkeys reach the guest. It hands the value to its authorized_keys parser
 * as one key, which keeps the lines after the first only as the first key's comment: a line without a comment that
 * is followed by another gets one, or the next key would be glued onto it.
 */
export function guestSshKeys(metaValue: string | undefined, pubkeys: string[]): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const raw of [...(metaValue ?? '').split(/\r?\n/), ...pubkeys.flatMap((k) => k.split(/\r?\n/))]) {
    const line = raw.trim();
    if (!line) continue;
    const id = line.split(/\s+/).slice(0, 2).join(' ');
    if (seen.has(id)) continue;
    seen.add(id);
    lines.push(line);
  }
  return lines.map((l, i) => (i < lines.length - 1 && l.split(/\s+/).length === 2 ? `${l} key${i + 1}` : l)).join('\n');
}

/** Follows a path of keys and list indices; undefined when it leads nowhere. */
function walk(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const seg of path.split('/').filter(Boolean)) {
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else if (cur && typeof cur === 'object' && !(cur instanceof PyFloat)) {
      cur = Object.prototype.hasOwnProperty.call(cur, seg) ? (cur as Record<string, unknown>)[seg] : undefined;
    } else return undefined;
  }
  return cur;
}

/**
 * The reply to one context request, computed afresh each time, so a rename or a meta or global context change shows
 * at the next read. Objects and lists come back as one line of JSON; a leaf comes back raw, without quotes, with
 * control characters (and non-ASCII) backslash-escaped; null, a missing key or an unknown server is an empty line.
 * Meta values are passed as stored: base64_fields is a hint for the guest (cloud-init decodes those keys itself).
 */
export async function contextReply(svc: Services, serverUuid: string, request: ContextRequest): Promise<ContextReply> {
  const doc = await contextDocument(svc, serverUuid);
  if (!doc) return end('');
  const v = walk(doc, decodePath(request));
  if (v === undefined || v === null) return end('');
  if (typeof v === 'string') return end(escapeAscii(v));
  return end(pyJson(v));
}
