/**
 * What the driver answers itself on a public NIC's private network, frame by frame: DHCP (so the lease has a default
 * route and a nameserver in every mode; QEMU's own DHCP server leaves both out under `restrict=on`) and, when egress
 * is off, DNS (QEMU drops it then: the nameserver the lease names must still answer). Pure functions over Ethernet
 * frames, so they are tested without QEMU.
 */

export interface PrivateNet {
  /** The guest's address (QEMU's `dhcpstart`: its hostfwd rules forward there). */
  guest: string;
  /** QEMU's side: the gateway. */
  host: string;
  /** QEMU's DNS address. */
  dns: string;
  mask: string;
}

const ETH_IPV4 = 0x0800;
const UDP = 17;
const DHCP_SERVER = 67;
const DHCP_CLIENT = 68;
const DNS_PORT = 53;
const DHCP_COOKIE = 0x63825363;
/** A day, as QEMU's DHCP server leases. */
export const LEASE_SECONDS = 86400;

function ip4(s: string): Buffer {
  return Buffer.from(s.split('.').map(Number));
}

/** QEMU's user-mode network answers ARP for its own addresses with this MAC: 52:55 then the IPv4 address. */
export function slirpMac(ip: string): Buffer {
  return Buffer.concat([Buffer.from([0x52, 0x55]), ip4(ip)]);
}

function checksum(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1]! << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

/** The IPv4/UDP view of a frame, or null when it is not IPv4 UDP (fragments included: DHCP and DNS never are). */
export interface UdpDatagram {
  srcMac: Buffer;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export function parseUdp(frame: Buffer): UdpDatagram | null {
  if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== ETH_IPV4) return null;
  const ip = frame.subarray(14);
  const ihl = (ip[0]! & 0x0f) * 4;
  if (ip[0]! >> 4 !== 4 || ihl < 20 || ip[9] !== UDP || (ip.readUInt16BE(6) & 0x3fff) !== 0) return null;
  const total = Math.min(ip.readUInt16BE(2), ip.length);
  if (total < ihl + 8) return null;
  const udp = ip.subarray(ihl, total);
  const len = Math.min(udp.readUInt16BE(4), udp.length);
  return {
    srcMac: frame.subarray(6, 12),
    srcIp: [...ip.subarray(12, 16)].join('.'),
    dstIp: [...ip.subarray(16, 20)].join('.'),
    srcPort: udp.readUInt16BE(0),
    dstPort: udp.readUInt16BE(2),
    payload: udp.subarray(8, len),
  };
}

/** The addresses, protocol and ports of an IPv4 frame (ports for tcp and udp only), or null for anything else (ARP...). */
export function parseIpv4(frame: Buffer): { proto: string; srcIp: string; dstIp: string; srcPort: number | null; dstPort: number | null } | null {
  if (frame.length < 34 || frame.readUInt16BE(12) !== ETH_IPV4) return null;
  const ip = frame.subarray(14);
  const ihl = (ip[0]! & 0x0f) * 4;
  if (ip[0]! >> 4 !== 4 || ihl < 20) return null;
  const p = ip[9]!;
  const proto = p === 6 ? 'tcp' : p === UDP ? 'udp' : p === 1 ? 'icmp' : String(p);
  // Later fragments carry no ports: they belong to a packet whose first fragment was decided.
  const first = (ip.readUInt16BE(6) & 0x1fff) === 0;
  const hasPorts = (proto === 'tcp' || proto === 'udp') && first && ip.length >= ihl + 4;
  return {
    proto,
    srcIp: [...ip.subarray(12, 16)].join('.'),
    dstIp: [...ip.subarray(16, 20)].join('.'),
    srcPort: hasPorts ? ip.readUInt16BE(ihl) : null,
    dstPort: hasPorts ? ip.readUInt16BE(ihl + 2) : null,
  };
}

/** An Ethernet + IPv4 + UDP frame with both checksums. */
export function udpFrame(d: { srcMac: Buffer; dstMac: Buffer; srcIp: string; dstIp: string; srcPort: number; dstPort: number; payload: Buffer }): Buffer {
  const udpLen = 8 + d.payload.length;
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + udpLen, 2);
  ip[8] = 64;
  ip[9] = UDP;
  ip4(d.srcIp).copy(ip, 12);
  ip4(d.dstIp).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const udp = Buffer.alloc(udpLen);
  udp.writeUInt16BE(d.srcPort, 0);
  udp.writeUInt16BE(d.dstPort, 2);
  udp.writeUInt16BE(udpLen, 4);
  d.payload.copy(udp, 8);
  const pseudo = Buffer.concat([ip.subarray(12, 20), Buffer.from([0, UDP, udpLen >> 8, udpLen & 0xff])]);
  let sum = 0;
  for (let i = 0; i < pseudo.length; i += 2) sum += pseudo.readUInt16BE(i);
  udp.writeUInt16BE(checksum(udp, sum) || 0xffff, 6);
  const eth = Buffer.alloc(14);
  d.dstMac.copy(eth, 0);
  d.srcMac.copy(eth, 6);
  eth.writeUInt16BE(ETH_IPV4, 12);
  return Buffer.concat([eth, ip, udp]);
}

const DHCP = { DISCOVER: 1, OFFER: 2, REQUEST: 3, ACK: 5, NAK: 6 } as const;

function dhcpOptions(bootp: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let i = 240; i < bootp.length;) {
    const tag = bootp[i]!;
    if (tag === 255) break;
    if (tag === 0) {
      i++;
      continue;
    }
    const len = bootp[i + 1];
    if (len === undefined || i + 2 + len > bootp.length) break;
    out.set(tag, bootp.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}

/**
 * The reply to a DHCP DISCOVER or REQUEST the guest sent, or null when the frame is none. The guest is alone on its
 * network, so it always gets the one address QEMU forwards to; a REQUEST for another address is refused (NAK) so a
 * client that remembers an old lease starts over.
 */
export function dhcpReply(frame: Buffer, net: PrivateNet): Buffer | null {
  const u = parseUdp(frame);
  if (!u || u.dstPort !== DHCP_SERVER || u.srcPort !== DHCP_CLIENT) return null;
  const b = u.payload;
  if (b.length < 240 || b[0] !== 1 || b.readUInt32BE(236) !== DHCP_COOKIE) return null;
  const opts = dhcpOptions(b);
  const type = opts.get(53)?.[0];
  if (type !== DHCP.DISCOVER && type !== DHCP.REQUEST) return null;
  const asked = opts.get(50) ?? (b.readUInt32BE(12) ? b.subarray(12, 16) : null);
  const nak = type === DHCP.REQUEST && asked !== null && !asked.equals(ip4(net.guest));
  const reply = Buffer.alloc(240);
  reply[0] = 2; // BOOTREPLY
  reply[1] = 1;
  reply[2] = 6;
  b.copy(reply, 4, 4, 8); // xid
  b.copy(reply, 10, 10, 12); // flags
  if (!nak) ip4(net.guest).copy(reply, 16);
  ip4(net.host).copy(reply, 20);
  b.copy(reply, 28, 28, 44); // chaddr
  reply.writeUInt32BE(DHCP_COOKIE, 236);
  const opt = (tag: number, value: Buffer) => Buffer.concat([Buffer.from([tag, value.length]), value]);
  const lease = Buffer.alloc(4);
  lease.writeUInt32BE(LEASE_SECONDS);
  const options = nak
    ? [opt(53, Buffer.from([DHCP.NAK])), opt(54, ip4(net.host))]
    : [
        opt(53, Buffer.from([type === DHCP.DISCOVER ? DHCP.OFFER : DHCP.ACK])),
        opt(54, ip4(net.host)),
        opt(51, lease),
        opt(1, ip4(net.mask)),
        opt(3, ip4(net.host)),
        opt(6, ip4(net.dns)),
      ];
  const payload = Buffer.concat([reply, ...options, Buffer.from([255])]);
  return udpFrame({
    srcMac: slirpMac(net.host),
    dstMac: Buffer.alloc(6, 0xff),
    srcIp: net.host,
    dstIp: '255.255.255.255',
    srcPort: DHCP_SERVER,
    dstPort: DHCP_CLIENT,
    payload,
  });
}

/**
 * The answer to a DNS query sent to the lease's nameserver while egress is off: no name outside exists for the
 * guest, so every query is answered at once with NXDOMAIN (opcodes other than QUERY: NOTIMP), the question echoed.
 * Null when the frame is not a DNS query to `net.dns`.
 */
export function dnsRefusal(frame: Buffer, net: PrivateNet): Buffer | null {
  const u = parseUdp(frame);
  if (!u || u.dstPort !== DNS_PORT || u.dstIp !== net.dns) return null;
  const q = u.payload;
  if (q.length < 12 || q[2]! & 0x80) return null;
  const opcode = (q[2]! >> 3) & 0x0f;
  const qd = q.readUInt16BE(4);
  let end = 12;
  for (let n = 0; n < qd && end < q.length; n++) {
    for (;;) {
      const l = q[end];
      if (l === undefined) break;
      if (l === 0 || (l & 0xc0) === 0xc0) {
        end += l === 0 ? 1 : 2;
        break;
      }
      end += l + 1;
    }
    end += 4; // type, class
  }
  const question = qd > 0 && end <= q.length ? q.subarray(12, end) : Buffer.alloc(0);
  const head = Buffer.alloc(12);
  q.copy(head, 0, 0, 2);
  head[2] = 0x80 | (opcode << 3) | (q[2]! & 0x01); // QR, opcode, RD as asked
  head[3] = 0x80 | (opcode === 0 ? (question.length ? 3 : 1) : 4); // RA; NXDOMAIN, FORMERR or NOTIMP
  head.writeUInt16BE(question.length ? qd : 0, 4);
  return udpFrame({
    srcMac: slirpMac(net.dns),
    dstMac: Buffer.from(u.srcMac),
    srcIp: net.dns,
    dstIp: u.srcIp,
    srcPort: DNS_PORT,
    dstPort: u.srcPort,
    payload: Buffer.concat([head, question]),
  });
}
