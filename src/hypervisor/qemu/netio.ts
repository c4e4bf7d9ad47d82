import net from 'node:net';
import type { NicIo } from '../driver.ts';
import { dhcpReply, dnsRefusal, parseIpv4 } from './guestnet.ts';
import { decide, type FirewallRule } from '../../domain/firewall.ts';

/**
 * QEMU's stream netdev and filter-mirror both frame ethernet frames as a 4-byte big-endian length followed by
 * the frame. Calls `onFrame` with each complete record (length prefix included, so it can be forwarded as is).
 */
export function frameReader(onFrame: (record: Buffer, frameLen: number) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      onFrame(buf.subarray(0, 4 + len), len);
      buf = buf.subarray(4 + len);
    }
  };
}

export function zeroIo(): NicIo {
  return { bytes_recv: 0, bytes_sent: 0, packets_recv: 0, packets_sent: 0 };
}

/** Connects to a unix socket QEMU listens on, retrying briefly while it does not exist yet. */
export async function connectUnix(socketPath: string, timeoutMs = 5000): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(socketPath);
        s.once('connect', () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (Date.now() >= deadline || (code !== 'ENOENT' && code !== 'ECONNREFUSED')) throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** Counts the frames QEMU mirrors to a socket (what a public NIC's guest receives). */
export function countMirror(sock: net.Socket, io: NicIo, dir: 'in' | 'out'): void {
  sock.on('error', () => {});
  sock.on(
    'data',
    frameReader((_rec, len) => {
      if (dir === 'in') {
        io.bytes_recv += len;
        io.packets_recv++;
      } else {
        io.bytes_sent += len;
        io.packets_sent++;
      }
    }),
  );
}

/** A frame in the framing QEMU's sockets use (4-byte big-endian length, then the frame). */
export function record(frame: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(frame.length);
  return Buffer.concat([head, frame]);
}

/**
 * Carries what a guest sends on a public NIC: DHCP is answered here (a lease with address, default route and
 * nameserver, whatever QEMU's restrict mode), DNS too while egress is off (NXDOMAIN: QEMU would drop it), and
 * everything else goes on to QEMU's user-mode network. Counts every frame the guest sent.
 */
export function carryPublic(
  sent: net.Socket,
  pass: net.Socket,
  reply: net.Socket,
  io: NicIo,
  lan: { dhcpstart: string; host: string; dns: string; mask: string; egress: boolean },
  /** The NIC's policy rules as they are now, and its address as the API shows it (the source the rules see). */
  policy: () => { rules: FirewallRule[] | undefined; address: string },
): void {
  const privateNet = { guest: lan.dhcpstart, host: lan.host, dns: lan.dns, mask: lan.mask };
  for (const s of [sent, pass, reply]) s.on('error', () => {});
  sent.on(
    'data',
    frameReader((rec, len) => {
      io.bytes_sent += len;
      io.packets_sent++;
      const frame = rec.subarray(4);
      const answer = dhcpReply(frame, privateNet) ?? (lan.egress ? null : dnsRefusal(frame, privateNet));
      if (answer) return void reply.write(record(answer));
      const { rules, address } = policy();
      const p = rules?.length ? parseIpv4(frame) : null;
      if (p && decide({ rules: rules! }, { direction: 'out', ...p, srcIp: address }) === 'drop') return;
      pass.write(rec);
    }),
  );
}

interface Port {
  key: string;
  sock: net.Socket;
  io: NicIo;
}

/**
 * One private VLAN: an L2 learning switch over the guests' stream netdevs. Frames go to the port that last sent
 * from the destination MAC, or to every other port when unknown or broadcast, so only guests on the same VLAN see
 * each other. Counts per port exactly what the guest sent and what it was given.
 */
export class VlanHub {
  private readonly ports = new Map<string, Port>();
  private readonly macs = new Map<string, Port>();

  constructor(readonly vlan: string) {}

  get size(): number {
    return this.ports.size;
  }

  /** Joins a guest NIC's socket to the VLAN; `io` is updated in place. */
  add(key: string, sock: net.Socket, io: NicIo): void {
    this.remove(key);
    const port: Port = { key, sock, io };
    this.ports.set(key, port);
    sock.on('error', () => {});
    sock.on('close', () => {
      if (this.ports.get(key) === port) this.remove(key);
    });
    sock.on(
      'data',
      frameReader((rec, len) => {
        io.bytes_sent += len;
        io.packets_sent++;
        if (len < 14) return;
        const src = rec.subarray(10, 16).toString('hex');
        const dst = rec.subarray(4, 10);
        this.macs.set(src, port);
        const known = dst[0]! & 1 ? undefined : this.macs.get(dst.toString('hex'));
        const targets = known ? (known === port ? [] : [known]) : [...this.ports.values()].filter((p) => p !== port);
        for (const t of targets) {
          t.io.bytes_recv += len;
          t.io.packets_recv++;
          t.sock.write(rec);
        }
      }),
    );
  }

  remove(key: string): void {
    const p = this.ports.get(key);
    if (!p) return;
    this.ports.delete(key);
    for (const [mac, port] of this.macs) if (port === p) this.macs.delete(mac);
    p.sock.destroy();
  }

  close(): void {
    for (const key of [...this.ports.keys()]) this.remove(key);
  }
}
