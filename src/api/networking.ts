import { Type } from 'typebox';
import type { Services } from '../services.ts';
import { IpCommands } from '../commands/ips.ts';
import { SubscriptionCommands } from '../commands/subscriptions.ts';
import { VlanCommands } from '../commands/vlans.ts';
import { errors } from '../errors.ts';
import { ownerRef, ref } from '../domain/refs.ts';
import { actionBody, created, objectBody, type Routes } from './http.ts';
import { createItems, envelope, parseListQuery, selectFields, STANDARD_FILTERS, type ListSpec } from './lists.ts';
import { ActionBody, AnyObject, CreateBody, ListQuerystring, UuidParams } from './schemas.ts';
import { schemaDoc } from './schema-docs.ts';

const { status: _status, ...FILTERS } = STANDARD_FILTERS;
const LIST: ListSpec = { filters: FILTERS, ordering: ['uuid', 'name'] };
const IpParams = Type.Object({ ip: Type.String({ maxLength: 64 }) });
const IdParams = Type.Object({ id: Type.String({ maxLength: 20 }) });
const Action = Type.Object({ do: Type.Optional(Type.String()) }, { additionalProperties: true });

/** /ips/, /vlans/ and /subscriptions/: what an account holds of the operator's networks, and how it bought it. */
export function networkingRoutes(r: Routes, svc: Services): void {
  const ip = new IpCommands(svc);
  const vlan = new VlanCommands(svc);
  const sub = new SubscriptionCommands(svc, ip, vlan);
  svc.renderers.set('ips', (actor, uuid) => ip.renderIpById(actor, uuid));
  svc.renderers.set('vlans', (actor, uuid) => vlan.renderVlanById(actor, uuid));

  // Subscriptions are notified under their numeric id, as their resource_uri has it.
  svc.renderers.set('subscriptions', (actor, id) =>
    sub.loadSubscription(actor, id).then(
      (s) => sub.renderSubscription(s),
      () => null,
    ),
  );

  const ips = ['ips'];
  r.get(
    '/ips/',
    { auth: 'user', tags: ips, summary: 'List IPs: bought ones and the DHCP addresses of running servers', schema: { querystring: ListQuerystring } },
    async ({ actor, query }) => {
      const q = parseListQuery(query, LIST);
      const { total, items } = await ip.listIps(actor, q, false);
      return envelope(
        items.map((x) => selectFields(x as object, query)),
        q,
        total,
      );
    },
  );
  r.get('/ips/detail/', { auth: 'user', tags: ips, summary: 'List IPs in full', schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await ip.listIps(actor, q, true);
    return envelope(
      items.map((x) => selectFields(x as object, query)),
      q,
      total,
    );
  });
  r.get('/ips/schema/', { auth: 'user', tags: ips, summary: 'IP schema' }, async () => schemaDoc('ip'));
  r.get('/ips/:ip/', { auth: 'user', tags: ips, summary: 'Get an IP', schema: { params: IpParams } }, async ({ actor, params, query }) =>
    selectFields(await ip.getIp(actor, params.ip!), query),
  );
  r.put(
    '/ips/:ip/',
    { auth: 'user', tags: ips, summary: 'Edit the meta and tags of an IP', schema: { params: IpParams, body: AnyObject } },
    async ({ actor, params, body }) => ip.updateIp(actor, params.ip!, objectBody(body)),
  );

  const vlans = ['vlans'];
  r.get('/vlans/', { auth: 'user', tags: vlans, summary: 'List VLANs', schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await vlan.listVlans(actor, q);
    return envelope(
      items.map((v) => selectFields({ owner: ownerRef(v.owner), resource_uri: ref('vlans', v.uuid).resource_uri, uuid: v.uuid }, query)),
      q,
      total,
    );
  });
  r.get('/vlans/detail/', { auth: 'user', tags: vlans, summary: 'List VLANs in full', schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
    const q = parseListQuery(query, LIST);
    const { total, items } = await vlan.listVlans(actor, q);
    const out = [];
    for (const v of items) out.push(selectFields(await vlan.renderVlan(actor, v), query));
    return envelope(out, q, total);
  });
  r.get('/vlans/schema/', { auth: 'user', tags: vlans, summary: 'VLAN schema' }, async () => schemaDoc('vlan'));
  r.get('/vlans/:uuid/', { auth: 'user', tags: vlans, summary: 'Get a VLAN', schema: { params: UuidParams } }, async ({ actor, params, query }) =>
    selectFields(await vlan.renderVlan(actor, await vlan.loadVlan(actor, params.uuid!)), query),
  );
  r.put(
    '/vlans/:uuid/',
    { auth: 'user', tags: vlans, summary: 'Edit the meta and tags of a VLAN', schema: { params: UuidParams, body: AnyObject } },
    async ({ actor, params, body }) => vlan.updateVlan(actor, params.uuid!, objectBody(body)),
  );

  const subs = ['subscriptions'];
  // Both lists: the list envelope with the total price beside it.
  const subscriptionList = (path: string, summary: string, list: 'listSubscriptions' | 'listGrouped') =>
    r.get(path, { auth: 'user', tags: subs, summary, schema: { querystring: ListQuerystring } }, async ({ actor, query }) => {
      const q = parseListQuery(query, { filters: {}, ordering: [] });
      const { total, items } = await sub[list](actor, query, q);
      return {
        ...envelope(
          items.map((s) => selectFields(s, query)),
          q,
          total,
        ),
        price: '0',
      };
    });
  subscriptionList('/subscriptions/', 'List subscriptions (?status=active|inactive|expired|notexpired|all, ?resource=ip,vlan,...)', 'listSubscriptions');
  subscriptionList(
    '/groupedsubscriptions/',
    'Subscriptions grouped in chains: each first subscription with the ones extending it in descendants (same filters as /subscriptions/)',
    'listGrouped',
  );
  r.get('/subscriptions/schema/', { auth: 'user', tags: subs, summary: 'Subscription schema' }, async () => schemaDoc('subscription'));
  r.get('/subscriptions/:id/', { auth: 'user', tags: subs, summary: 'Get a subscription', schema: { params: IdParams } }, async ({ actor, params }) =>
    sub.renderSubscription(await sub.loadSubscription(actor, params.id!)),
  );
  r.post(
    '/subscriptions/',
    { auth: 'user', tags: subs, summary: 'Buy subscriptions; ip and vlan ones assign addresses/VLANs from the pool', schema: { body: CreateBody } },
    async ({ actor, body }) => {
      const objects = await sub.createSubscriptions(actor, createItems(body));
      return created({ objects, price: '0' });
    },
  );
  r.post(
    '/subscriptions/:id/action/',
    { auth: 'user', tags: subs, summary: 'Subscription actions: extend, auto_renew', schema: { params: IdParams, querystring: Action, body: ActionBody } },
    async ({ actor, params, query, body }) => {
      const b = actionBody(body);
      if (query.do === 'extend') return sub.extend(actor, params.id!, b);
      if (query.do === 'auto_renew') return sub.autoRenew(actor, params.id!, b);
      throw errors.invalid('do', `Unknown action ${String(query.do)}; available: extend, auto_renew`);
    },
  );

  r.post(
    '/subscriptioncalculator/',
    { auth: 'user', tags: subs, summary: 'Price quote for buying subscriptions (same body as create)', schema: { body: CreateBody } },
    async ({ body }) => ({
      objects: sub.quote(createItems(body)),
      price: '0',
    }),
  );
  r.post(
    '/subscriptioncalculator/:id/action/',
    {
      auth: 'user',
      tags: subs,
      summary: 'Price quote for extending a subscription (?do=extend)',
      schema: { params: IdParams, querystring: Action, body: ActionBody },
    },
    async ({ actor, params, query, body }) => {
      if (query.do !== 'extend') throw errors.invalid('do', `Unknown action ${String(query.do)}; available: extend`);
      return sub.quoteExtension(actor, params.id!, actionBody(body));
    },
  );
}
