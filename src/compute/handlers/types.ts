import type { ServerDef } from '../../domain/server-definition.ts';
import type { HypervisorDriver } from '../../hypervisor/driver.ts';
import type { Operation } from '../../store/operations.ts';
import type { Stored } from '../../store/servers.ts';
import type { NodeContext } from '../node-context.ts';

/**
 * Runs one claimed operation on its host's driver. `s` is the server as read when the operation began (gone when
 * deleted meanwhile); what is returned becomes the operation's result (a console's port, say).
 */
export type Handler = (ctx: NodeContext, op: Operation, driver: HypervisorDriver, s: Stored<ServerDef> | undefined) => Promise<Record<string, unknown> | void>;
