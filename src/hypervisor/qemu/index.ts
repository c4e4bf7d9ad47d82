export { QemuDriver, type QemuOptions } from './driver.ts';
export { buildCommandLine, runFiles, guestMemMiB, publicNet, MIN_GUEST_MEM_MIB, type HostSettings } from './cmdline.ts';
export { QmpClient, QmpError, type QmpEvent } from './qmp.ts';
export { probeAccel, type ProbeResult } from './probe.ts';
