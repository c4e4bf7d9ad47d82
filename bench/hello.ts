import Fastify from 'fastify';

/** The baseline: a bare Fastify hello-world, as fast as a Node HTTP JSON API gets on this machine. */
const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
const port = Number(process.argv[2] ?? 0);
await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`listening ${(app.server.address() as { port: number }).port}\n`);
