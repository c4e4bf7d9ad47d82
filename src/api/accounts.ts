import { Type } from 'typebox';
import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import type { Authenticator } from './auth.ts';
import { parseCookies } from './auth.ts';
import { Reply, type Routes } from './http.ts';

const SESSION_S = 1209600;
const CSRF_S = 31449600;

/** accounts/action/?do=login|logout|authenticate_asynchronous: the cookie session of browsers and pycloudsigma. */
export function accountRoutes(r: Routes, svc: Services, auth: Authenticator): void {
  r.post(
    '/accounts/action/',
    {
      tags: ['accounts'],
      summary: 'Account actions: login, logout, authenticate_asynchronous',
      auth: 'public',
      schema: { querystring: Type.Object({ do: Type.Optional(Type.String()) }, { additionalProperties: true }) },
    },
    async ({ query, body, req }) => {
      // Over TLS the cookies are sent back only over TLS. The session and the websocket token are HttpOnly (no script
      // reads them; the browser sends them); csrftoken is not, since the web console reads it to send X-CSRFToken.
      const secure = req.protocol === 'https' ? '; Secure' : '';
      switch (query.do) {
        case 'login': {
          const b = (body ?? {}) as Record<string, unknown>;
          const email = b.username ?? b.email;
          if (typeof email !== 'string') throw errors.required('username');
          if (typeof b.password !== 'string') throw errors.required('password');
          const user = (await auth.checkPassword(email, b.password, req.ip))?.user;
          if (!user) throw errors.unauthorized();
          const { token, csrf } = await svc.store.users.issueToken(user, 'session', SESSION_S);
          return new Reply(
            200,
            { uuid: user },
            {
              'set-cookie': [
                `sessionid=${token}; Max-Age=${SESSION_S}; Path=/; HttpOnly; SameSite=Lax${secure}`,
                `csrftoken=${csrf}; Max-Age=${CSRF_S}; Path=/; SameSite=Lax${secure}`,
              ] as unknown as string,
            },
          );
        }
        case 'logout': {
          const sid = parseCookies(req.headers.cookie).sessionid;
          if (sid) await svc.store.users.revokeToken(sid);
          return new Reply(200, {}, { 'set-cookie': `sessionid=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax${secure}` });
        }
        case 'authenticate_asynchronous': {
          const actor = await auth.authenticate(req, 'user');
          const { token } = await svc.store.users.issueToken(actor.user, 'async', 120);
          return new Reply(200, {}, { 'set-cookie': `async_auth=${token}; Max-Age=120; Path=/; HttpOnly; SameSite=Lax${secure}` });
        }
        default:
          throw errors.invalid('do', `Unknown action ${String(query.do)}; available: login, logout, authenticate_asynchronous`);
      }
    },
  );
}
