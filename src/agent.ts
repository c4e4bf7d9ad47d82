import type { Config } from './config.ts';
import { buildCore } from './core.ts';
import type { ComputeNode } from './compute/node.ts';

/** `opensigma agent`: a compute host only, taking its operations from the shared database. */
export async function runAgent(config: Config): Promise<{ node: ComputeNode; close(): Promise<void> }> {
  const core = await buildCore(config, { api: false, compute: true });
  const node = core.compute!;
  core.log.info({ agent: node.agentId, hosts: node.hostNames, heartbeat_timeout_ms: config.heartbeatTimeoutMs }, 'compute agent running');
  // The node's timers do not hold the process open (so embedders can stop it); an agent must outlive a database
  // outage, when it has no open connection either.
  const keepAlive = setInterval(() => {}, 60_000);
  const close = async () => {
    clearInterval(keepAlive);
    await core.close();
  };
  // Another agent holds our hosts now: running on would mean two agents per host.
  node.onLost = () => void close().finally(() => process.exit(3));
  return { node, close };
}
