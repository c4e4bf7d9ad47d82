/**
 * The attacker of bench/tenants.ts, in a process of its own: holds N anonymous connections open to an API node, half
 * sending their headers a line every few seconds, half sending a body a byte at a time after complete headers that
 * carry no credentials, and opens a new one whenever the server closes one. Prints a JSON line of counts each second.
 * Run: node --import tsx bench/slow-clients.ts http://127.0.0.1:PORT 5000
 */
import net from 'node:net';

const [origin, countArg] = process.argv.slice(2);
const url = new URL(origin!);
const count = Number(countArg ?? 5000);
let open = 0;
let opened = 0;
let closedByServer = 0;
let errors = 0;
let stopping = false;

function one(i: number): void {
  const sock = net.connect({ port: Number(url.port), host: url.hostname });
  let timer: NodeJS.Timeout | undefined;
  let connected = false;
  sock.on('error', () => errors++);
  sock.on('connect', () => {
    connected = true;
    open++;
    opened++;
    if (i % 2) {
      sock.write(`POST /api/2.0/tags/ HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n{`);
      timer = setInterval(() => sock.write(' '), 1000);
    } else {
      sock.write(`POST /api/2.0/tags/ HTTP/1.1\r\nhost: ${url.host}\r\n`);
      let n = 0;
      timer = setInterval(() => sock.write(`x-slow-${n++}: 1\r\n`), 3000);
    }
  });
  sock.on('close', () => {
    clearInterval(timer);
    if (connected) open--;
    if (stopping) return;
    if (connected) closedByServer++;
    // A little later, as a real flood would: reconnecting in a tight loop only measures the loopback.
    setTimeout(() => one(i), 50);
  });
}

// Opened in steps, so the server's listen backlog is not what refuses them.
for (let i = 0; i < count; i++) {
  one(i);
  if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20));
}
const tick = setInterval(() => process.stdout.write(JSON.stringify({ open, opened, closedByServer, errors }) + '\n'), 500);
process.on('SIGTERM', () => {
  stopping = true;
  clearInterval(tick);
  process.exit(0);
});
