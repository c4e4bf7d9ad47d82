import type { Services } from '../services.ts';
import { errors } from '../errors.ts';
import { deleteState, listStates, loadState, resetState, saveState, StateError, statePlaces } from '../store/states.ts';
import { requireAdmin } from './admin.ts';
import { noContent, type Routes } from './http.ts';

/** Saved states over HTTP, for test harnesses that only speak HTTP: the administrator's alone. */
export function stateRoutes(r: Routes, svc: Services): void {
  const places = () => statePlaces(svc.config);
  const wire = (s: { name: string; saved: string; rows: number; bytes: number }) => ({ name: s.name, saved: s.saved, rows: s.rows, bytes: s.bytes });
  // A client's mistake (a bad name, a state that is not there) is the API's own error, never a 500.
  const guarded = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof StateError) throw e.kind === 'missing' ? errors.notFound('Saved state') : errors.invalid('name', e.message);
      throw e;
    }
  };

  r.get('/opensigma/state/', { auth: 'user', tags: ['opensigma'] }, async ({ actor }) => {
    await requireAdmin(svc, actor);
    const objects = listStates(places()).map(wire);
    return { meta: { limit: 0, offset: 0, total_count: objects.length }, objects };
  });

  r.post('/opensigma/state/action/', { auth: 'user', tags: ['opensigma'] }, async ({ actor, query }) => {
    await requireAdmin(svc, actor);
    if (query.do !== 'reset') throw errors.invalid('do', 'do must be reset here (save and load name a state: /opensigma/state/NAME/action/)');
    await resetState(svc.store, places(), { all: query.all === 'true' || query.all === '1', keepUser: svc.config.adminEmail ?? 'admin@localhost' });
    return { result: 'success' };
  });

  r.post('/opensigma/state/:name/action/', { auth: 'user', tags: ['opensigma'] }, async ({ actor, params, query }) => {
    await requireAdmin(svc, actor);
    if (query.do === 'save') return wire(await guarded(() => saveState(svc.store, places(), params.name!)));
    if (query.do === 'load') return wire(await guarded(() => loadState(svc.store, places(), params.name!)));
    throw errors.invalid('do', 'do must be save or load');
  });

  r.delete('/opensigma/state/:name/', { auth: 'user', tags: ['opensigma'] }, async ({ actor, params }) => {
    await requireAdmin(svc, actor);
    await guarded(() => deleteState(places(), params.name!));
    return noContent();
  });
}
