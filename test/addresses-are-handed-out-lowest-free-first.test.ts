import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateAddress, parsePool } from '../src/domain/cidr.ts';

// Public IPs and DHCP leases come from one allocator: the lowest address of the pool that nobody holds, skipping one
// a concurrent taker got first (its claim fails), and none once the pool is used up.
const pool = parsePool('198.51.100.0/29'); // .2 to .6: not the network, the gateway (.1) or the broadcast address

test('the lowest free address is handed out, past the held ones', async () => {
  assert.equal(await allocateAddress(pool, [], async () => true), '198.51.100.2');
  assert.equal(await allocateAddress(pool, ['198.51.100.2', '198.51.100.4'], async () => true), '198.51.100.3');
});

test('an address a concurrent taker claimed first is skipped for the next one', async () => {
  const tried: string[] = [];
  const got = await allocateAddress(pool, ['198.51.100.2'], async (ip) => (tried.push(ip), ip !== '198.51.100.3'));
  assert.equal(got, '198.51.100.4');
  assert.deepEqual(tried, ['198.51.100.3', '198.51.100.4']);
});

test('a used-up pool gives nothing', async () => {
  const all = ['198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5', '198.51.100.6'];
  assert.equal(await allocateAddress(pool, all, async () => true), null);
  assert.equal(await allocateAddress(pool, [], async () => false), null);
});
