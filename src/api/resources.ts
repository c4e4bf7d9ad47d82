import type { Services } from '../services.ts';
import type { Authenticator } from './auth.ts';
import type { Routes } from './http.ts';
import { accountRoutes } from './accounts.ts';
import { capabilityRoutes } from './capabilities.ts';
import { driveRoutes } from './drives.ts';
import { jobRoutes } from './jobs.ts';
import { aclRoutes } from './acls.ts';
import { profileRoutes } from './profile.ts';
import { snapshotRoutes } from './snapshots.ts';
import { remoteSnapshotRoutes } from './remote-snapshots.ts';
import { billingRoutes } from './billing.ts';
import { auditLogRoutes } from './audit-log.ts';
import { keypairRoutes } from './keypairs.ts';
import { networkingRoutes } from './networking.ts';
import { firewallRoutes } from './firewall.ts';
import { libdriveRoutes } from './libdrives.ts';
import { globalContextRoutes } from './global-context.ts';
import { locationRoutes } from './locations.ts';
import { serverRoutes } from './servers.ts';
import { tagRoutes } from './tags.ts';
import { cloudStatusRoutes } from './cloud-status.ts';
import { stateRoutes } from './states.ts';

/** Every resource of the API. Add a resource here and it is routed, authenticated and documented. */
export async function registerResources(r: Routes, svc: Services, auth: Authenticator): Promise<void> {
  accountRoutes(r, svc, auth);
  capabilityRoutes(r, svc);
  serverRoutes(r, svc);
  libdriveRoutes(r, svc, driveRoutes(r, svc));
  tagRoutes(r, svc);
  keypairRoutes(r, svc);
  networkingRoutes(r, svc);
  firewallRoutes(r, svc);
  globalContextRoutes(r, svc);
  locationRoutes(r, svc);
  jobRoutes(r, svc);
  aclRoutes(r, svc);
  profileRoutes(r, svc);
  snapshotRoutes(r, svc);
  remoteSnapshotRoutes(r, svc);
  billingRoutes(r, svc);
  auditLogRoutes(r, svc);
  cloudStatusRoutes(r);
  stateRoutes(r, svc);
}
