import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export interface Me {
  uuid: string;
  email: string;
}

export const SessionContext = createContext<Me>({ uuid: '', email: '' });
export const useMe = () => useContext(SessionContext);

/** What the signed-in user may do with an object: everything if it is theirs, else what its ACLs grant. */
export function may(me: Me, obj: { owner?: { uuid: string } | null; permissions?: unknown[] }, permission: string): boolean {
  if (!obj.owner || obj.owner.uuid === me.uuid) return true;
  return (obj.permissions ?? []).includes(permission);
}
