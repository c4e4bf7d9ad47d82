import { createLogger } from '../log.ts';
import type { Config } from '../config.ts';
import { Store } from '../store/index.ts';
import { Services } from '../services.ts';
import { ComputeNode } from './node.ts';
import { HostWatch } from './liveness.ts';
import { createHosts } from '../hypervisor/index.ts';
import { contextReply } from '../domain/context.ts';

/** `opensigma agent`: a compute host only, taking its operations from the shared database. */
export async function runAgent(config: Config): Promise<{ node: ComputeNode; close(): Promise<void> }> {
  const log = createLogger(config);
  const store = await Store.open(config.databaseUrl, config.dataDir);
  const svc = new Services(config, store, log);
  await svc.bus.start();
  const hosts = await createHosts(config, (server, request) => contextReply(svc, server, request), (msg, fields) => log.info({ ...fields, component: 'qemu' }, msg));
  const node = new ComputeNode(config, store, svc.bus, hosts, log);
  try {
    await node.start();
  } catch (e) {
    await node.stop().catch(() => {});
    await store.close();
    throw e;
  }
  const watch = new HostWatch(store, svc.bus, config.heartbeatTimeoutMs, log);
  watch.start();
  log.info({ agent: node.agentId, hosts: node.hostNames, heartbeat_timeout_ms: config.heartbeatTimeoutMs }, 'compute agent running');
  // The node's timers do not hold the process open (so embedders can stop it); an agent must outlive a database
  // outage, when it has no open connection either.
  const keepAlive = setInterval(() => {}, 60_000);
  const close = async () => {
    clearInterval(keepAlive);
    watch.stop();
    await node.stop();
    await store.close();
  };
  // Another agent holds our hosts now: running on would mean two agents per host.
  node.onLost = () => void close().finally(() => process.exit(3));
  return { node, close };
}
