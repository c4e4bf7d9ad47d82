import type { Operation, OperationKind } from '../../store/operations.ts';
import type { NodeContext } from '../node-context.ts';
import { closeConsole, closeVnc, openConsole, openVnc } from './consoles.ts';
import { restart } from './restart.ts';
import { shutdown } from './shutdown.ts';
import { start } from './start.ts';
import { stop } from './stop.ts';
import type { Handler } from './types.ts';

/** A record rather than a switch: a new operation kind does not compile until it has a handler. */
const HANDLERS: Record<OperationKind, Handler> = {
  start,
  stop,
  shutdown,
  restart,
  open_console: openConsole,
  close_console: closeConsole,
  open_vnc: openVnc,
  close_vnc: closeVnc,
};

/** Runs a claimed operation: its host's driver, the server as it is now, and the handler of its kind. */
export async function perform(ctx: NodeContext, op: Operation): Promise<Record<string, unknown> | void> {
  const driver = ctx.driverFor(op.host);
  const s = await ctx.store.servers.get(op.server_uuid);
  // A kind this version does not know (a row written by a newer one) finishes with nothing done rather than failing.
  const handler = HANDLERS[op.kind] as Handler | undefined;
  return handler?.(ctx, op, driver, s);
}
