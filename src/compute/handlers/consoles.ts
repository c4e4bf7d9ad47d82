import { ConsoleGateway, HISTORY_BYTES } from '../console.ts';
import { VncGateway } from '../vnc-gateway.ts';
import type { Handler } from './types.ts';

/** Opens (or reuses) the server's serial console gateway; the operation's result is its port. */
export const openConsole: Handler = async (ctx, op, driver) => {
  let gw = ctx.consoles.get(op.server_uuid);
  if (!gw) {
    gw = new ConsoleGateway(
      ctx.bindHost(),
      async () => (await ctx.store.servers.get(op.server_uuid))?.doc.vnc_password ?? '\0',
      () => driver.attachSerial(op.server_uuid),
      async () => (await driver.serialHistory?.(op.server_uuid, HISTORY_BYTES)) ?? Buffer.alloc(0),
      ctx.guesses,
    );
    ctx.consoles.set(op.server_uuid, gw);
  }
  return { port: await gw.open() };
};

export const closeConsole: Handler = async (ctx, op) => {
  await ctx.consoles.get(op.server_uuid)?.close();
  ctx.consoles.delete(op.server_uuid);
};

/** Every open gives a new endpoint, as CloudSigma's vnc_url changes on each open. */
export const openVnc: Handler = async (ctx, op, driver, s) => {
  await ctx.vncs.get(op.server_uuid)?.close();
  const upstream = await driver.openVnc(op.server_uuid, s?.doc.vnc_password ?? '');
  const password = async () => (await ctx.store.servers.get(op.server_uuid))?.doc.vnc_password ?? '\0';
  const gw = new VncGateway(ctx.bindHost(), { host: '127.0.0.1', port: upstream.port }, password, ctx.guesses);
  ctx.vncs.set(op.server_uuid, gw);
  return { port: await gw.open() };
};

export const closeVnc: Handler = async (ctx, op, driver) => {
  await ctx.vncs.get(op.server_uuid)?.close();
  ctx.vncs.delete(op.server_uuid);
  await driver.closeVnc(op.server_uuid);
};
