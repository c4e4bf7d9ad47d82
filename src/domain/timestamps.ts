import { isoMicros } from './ids.ts';

/** Snapshot and audit-log timestamps use a space: `2014-06-05 09:53:28.851859+00:00`. */
export const spacedMicros = (d: Date = new Date()): string => isoMicros(d).replace('T', ' ');
