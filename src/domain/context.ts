import type { Services } from '../services.ts';

/**
 * The server context protocol (guest side): given a server and a request path, the exact reply the guest reads
 * from its second serial port. (Completed by the context issue; this answers the whole definition as JSON.)
 */
export async function contextReply(svc: Services, serverUuid: string, _request: string): Promise<string> {
  const s = await svc.store.servers.get(serverUuid);
  if (!s) return '';
  return JSON.stringify({ name: s.doc.name, uuid: s.uuid, meta: s.doc.meta });
}
