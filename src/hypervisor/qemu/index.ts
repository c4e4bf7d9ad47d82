export { QemuDriver, type QemuOptions } from './driver.ts';
export {
  buildCommandLine,
  runFiles,
  guestMemMiB,
  publicNet,
  portForwards,
  DEFAULT_FORWARDED_PORTS,
  MIN_GUEST_MEM_MIB,
  type HostSettings,
  type PortForward,
} from './cmdline.ts';
export { QmpClient, QmpError, type QmpEvent } from './qmp.ts';
export { probeAccel, type ProbeResult } from './probe.ts';
