import net from 'node:net';

/** Whole PostgreSQL backend messages at the start of `buf`: their type bytes, and whether the buffer ends on a boundary. */
function backendMessages(buf: Buffer): { types: string[]; complete: boolean } {
  const types: string[] = [];
  let off = 0;
  while (off + 5 <= buf.length) {
    const len = buf.readInt32BE(off + 1);
    if (off + 1 + len > buf.length) break;
    types.push(String.fromCharCode(buf[off]!));
    off += 1 + len;
  }
  return { types, complete: off === buf.length };
}

export interface CutProxy {
  /** A connection URL like `url` that goes through the proxy. */
  url: string;
  /** Cut the next connection whose statement matching `sql` returns rows, after the database committed it. */
  arm(sql: string): void;
  cuts: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of PostgreSQL that can lose an answer the way a network or a database restart does: the
 * statement has run and committed, and the connection dies before the client reads the rows.
 */
export async function pgCutProxy(url: string): Promise<CutProxy> {
  const target = new URL(url);
  let armedSql: string | null = null;
  const sockets = new Set<net.Socket>();
  const proxy: CutProxy = {
    url: '',
    cuts: 0,
    arm: (sql) => void (armedSql = sql),
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    // This connection's prepared statements by name: later executions send only the name.
    const texts = new Map<string, string>();
    let watching = false;
    let held: Buffer[] = [];
    client.on('data', (d: Buffer) => {
      // Frontend messages: type, length, body. Parse ('P') is name, query; Bind ('B') is portal, statement name.
      // (The first message of a connection has no type byte; it names no statement and parses as noise.)
      for (let off = 0; off + 5 <= d.length;) {
        const type = String.fromCharCode(d[off]!);
        const len = d.readInt32BE(off + 1);
        if (len < 4) break;
        const fields = d
          .subarray(off + 5, off + 1 + len)
          .toString('utf8')
          .split('\0');
        let text: string | undefined;
        if (type === 'P') {
          if (fields[0]) texts.set(fields[0], fields[1] ?? '');
          text = fields[1];
        } else if (type === 'B' && fields[1]) text = texts.get(fields[1]);
        else if (type === 'Q') text = fields[0];
        if (armedSql && text?.includes(armedSql)) watching = true;
        off += 1 + len;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!watching) return void client.write(d);
      held.push(d);
      const all = Buffer.concat(held);
      const { types, complete } = backendMessages(all);
      if (!complete || !types.includes('Z')) return; // the statement has not committed yet
      watching = false;
      held = [];
      if (types.includes('D') && armedSql) {
        armedSql = null;
        proxy.cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(all);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String((server.address() as net.AddressInfo).port);
  proxy.url = u.toString();
  return proxy;
}
