import { waitFor, type TestServer } from './harness.ts';

export const GiB = 1024 ** 3;

export async function waitForDrive(t: TestServer, uuid: string, status: string, call = t.call): Promise<any> {
  return waitFor(
    async () => {
      const r = await call('GET', `/drives/${uuid}/`);
      return r.body?.status === status ? r.body : null;
    },
    10000,
    `drive ${uuid} to be ${status}`,
  );
}

/** Creates a drive and waits until its image exists. */
export async function readyDrive(t: TestServer, body: Record<string, unknown> = {}, call = t.call): Promise<any> {
  const r = await call('POST', '/drives/', { objects: [{ name: 'd', media: 'disk', size: GiB, ...body }] });
  if (r.status !== 201) throw new Error(`create drive: ${r.status} ${r.text}`);
  return waitForDrive(t, r.body.objects[0].uuid, 'unmounted', call);
}

/** A second account, for isolation checks. */
export async function otherUser(t: TestServer, email = 'other@example.com', password = 'other-password'): Promise<TestServer['call']> {
  if (!(await t.running.svc.store.users.byEmail(email))) await t.running.svc.store.users.create(email, password);
  return t.as(email, password);
}

/** Sets the admin's profile clone_naming (stored where Services.cloneNamingOf reads it). */
export async function setCloneNaming(t: TestServer, strategy: string): Promise<void> {
  const users = t.running.svc.store.users;
  const u = (await users.byEmail('admin@example.com'))!;
  const profile = { ...((u.data.profile as Record<string, unknown>) ?? {}), clone_naming: strategy };
  await users.setData(u.uuid, { ...u.data, profile });
}
