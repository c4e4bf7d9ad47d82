import type { Services } from '../services.ts';
import { RemoteSnapshotCommands } from '../commands/remote-snapshots.ts';
import type { Routes } from './http.ts';
import { snapshotKindRoutes } from './snapshots.ts';

/** /remotesnapshots/: copies of drives kept on other storage, and clones of them into new drives. */
export function remoteSnapshotRoutes(r: Routes, svc: Services): void {
  snapshotKindRoutes(r, svc, new RemoteSnapshotCommands(svc), {
    path: '/remotesnapshots/',
    tag: 'remote snapshots',
    noun: 'remote snapshot',
    createSummary: 'Copy drives to remote storage (status creating, then available)',
  });
}
