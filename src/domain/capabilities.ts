import fs from 'node:fs';
import path from 'node:path';
import defaults from './capabilities.default.json' with { type: 'json' };

export type Capabilities = typeof defaults & Record<string, unknown>;
interface Range {
  min: number;
  max: number;
}
export interface HostLimits {
  cpu: Range;
  cpu_per_smp: Range;
  mem: Range;
  smp: Range;
}

/**
 * The single source of limits that servers and drives validate against: the defaults modelled on CloudSigma's,
 * deep-merged with `capabilities.json` in the data directory when an operator provides one.
 */
export function loadCapabilities(dataDir: string, extra: Record<string, unknown> = {}): Capabilities {
  let caps: unknown = structuredClone(defaults);
  const file = path.join(dataDir, 'capabilities.json');
  if (fs.existsSync(file)) caps = deepMerge(caps, JSON.parse(fs.readFileSync(file, 'utf8')));
  // Typed as the defaults: an operator's file is trusted to keep their shapes.
  return deepMerge(caps, extra) as Capabilities;
}

function deepMerge(a: unknown, b: unknown): unknown {
  if (!b || typeof b !== 'object' || Array.isArray(b) || !a || typeof a !== 'object' || Array.isArray(a)) return b;
  const base = a as Record<string, unknown>;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(b)) out[k] = k in base ? deepMerge(base[k], v) : v;
  return out;
}

export function hostLimits(caps: Capabilities, cpuType: string): HostLimits | undefined {
  return (caps.hosts as Record<string, HostLimits>)[cpuType];
}

export function validCpuTypes(caps: Capabilities, hypervisor: string): string[] | undefined {
  return (caps.hypervisors as Record<string, string[]>)[hypervisor];
}
