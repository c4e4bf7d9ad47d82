import type { AddressInfo } from 'node:net';
import type { Services } from '../services.ts';
import { API } from '../domain/refs.ts';
import type { Routes } from './http.ts';
import { envelope } from './lists.ts';

/**
 * /locations/: this installation is the one location. Its URLs use OPENSIGMA_PUBLIC_HOST and the port the API really
 * listens on; the websocket is served by the API itself.
 */
export function locationRoutes(r: Routes, svc: Services): void {
  // The answer changes only with the port (known once the server listens): made once, not on every request.
  const answer = (port: number) => {
    const { config } = svc;
    const host = config.publicHost.includes(':') && !config.publicHost.startsWith('[') ? `[${config.publicHost}]` : config.publicHost;
    const secure = Boolean(config.tlsCert);
    const base = `${secure ? 'https' : 'http'}://${host}:${port}`;
    const api = `${base}${API}/`;
    const location = {
      alternative_frontend_url: `${base}/`,
      api_endpoint: api,
      country_code: '',
      default_frontend_signup_url: `${base}/`,
      default_frontend_url: `${base}/`,
      display_name: `opensigma (${config.publicHost})`,
      documentation_url: `${base}${API}/openapi.json`,
      id: 'OPENSIGMA',
      upload_url: api,
      websocket_url: `${secure ? 'wss' : 'ws'}://${host}:${port}/websocket`,
    };
    return envelope([location], { limit: 0, offset: 0 }, 1);
  };
  let made: ReturnType<typeof answer> | null = null;
  r.get('/locations/', { auth: 'public', tags: ['locations'], summary: 'The locations of this cloud (this installation)' }, async ({ req }) => {
    if (made) return made;
    const port = (req.server.server.address() as AddressInfo | null)?.port ?? svc.config.listenPort;
    const body = answer(port);
    if (req.server.server.listening) made = body;
    return body;
  });
}
