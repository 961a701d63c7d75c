// The fleet's Lua scripts. Each runs atomically in Redis, so the checks and the writes in one
// script cannot interleave with another worker's. Times are Redis' own clock (TIME), so the
// workers' clocks do not matter. (Redis >= 7: scripts are replicated by their effects.)

import { Script } from './redis.js';

/**
 * Per-host politeness across the fleet: a token bucket (KEYS[1], a hash) and a concurrency
 * lease set (KEYS[2], a sorted set of holder → lease expiry).
 * ARGV: rps (0 = no rate limit), burst, perHost (0 = no cap), member, lease ms.
 * Returns 0 when granted (a token taken and/or a lease added), N > 0 = retry in N ms (no token
 * yet), -1 = every concurrency slot is held (retry shortly).
 */
export const ACQUIRE = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rps = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local lease = tonumber(ARGV[5])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= cap then return -1 end
end
if rps > 0 then
  local tokens = burst
  local v = redis.call('HMGET', KEYS[1], 't', 'ts')
  if v[1] then
    local dt = now - tonumber(v[2])
    if dt < 0 then dt = 0 end
    tokens = math.min(burst, tonumber(v[1]) + dt * rps / 1000)
  end
  if tokens < 1 then
    return math.max(1, math.ceil((1 - tokens) * 1000 / rps))
  end
  redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens - 1), 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rps) + 1000)
end
if cap > 0 then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], lease + 1000)
end
return 0
`);

/**
 * Writes a result (or dead-letter) entry and acknowledges the input entry, only if the entry is
 * still pending and owned by this consumer: a worker whose entry was claimed by another (it was
 * too slow, or presumed dead) writes nothing. So one input entry gets at most one result entry.
 * KEYS: input stream, output stream, concurrency lease set (any key when none), last-error hash.
 * ARGV: group, consumer, entry id, MAXLEN of the output (0 = none), lease member ('' = none),
 * then the output entry's field/value pairs.
 * Returns 1 written and acknowledged, 0 not owned any more (nothing written).
 */
export const COMMIT = new Script(`
if ARGV[5] ~= '' then redis.call('ZREM', KEYS[3], ARGV[5]) end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
local args = {'XADD', KEYS[2]}
if tonumber(ARGV[4]) > 0 then
  args[#args + 1] = 'MAXLEN'
  args[#args + 1] = '~'
  args[#args + 1] = ARGV[4]
end
args[#args + 1] = '*'
for i = 6, #ARGV do args[#args + 1] = ARGV[i] end
redis.call(unpack(args))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
return 1
`);

/**
 * Claims entries idle longer than min-idle from any consumer (XAUTOCLAIM) and returns them with
 * their delivery counts. KEYS: input stream, last-error hash. ARGV: group, consumer, min idle
 * ms, cursor, count. Returns { next cursor, { {id, fields, deliveries}, ... } }.
 */
export const CLAIM = new Script(`
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
for i, e in ipairs(r[2]) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
  local n = 0
  if #p > 0 then n = p[1][4] end
  local f = e[2]
  if not f then f = {} end
  out[#out + 1] = {e[1], f, n}
  if redis.call('HEXISTS', KEYS[2], e[1]) == 0 then
    redis.call('HSET', KEYS[2], e[1], 'delivery ' .. (n - 1) .. ' was not acknowledged within ' .. ARGV[3] .. ' ms (its worker stopped or lost it)')
  end
end
return {r[1], out}
`);

/**
 * Keeps this worker's in-flight entries and concurrency leases fresh: resets the idle time of
 * each entry it still owns (XCLAIM JUSTID: no delivery counted) so no one claims an entry that
 * is only waiting or slow, and extends its leases. KEYS: input stream, then one lease set per
 * lease. ARGV: group, consumer, lease ms, number of ids, ids..., then one member per lease set.
 * Returns the ids this consumer does not own any more.
 */
export const TOUCH = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[4])
local lost = {}
for i = 5, 4 + n do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 0 or p[1][2] ~= ARGV[2] then
    lost[#lost + 1] = ARGV[i]
  else
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  end
end
for k = 2, #KEYS do
  redis.call('ZADD', KEYS[k], 'XX', now + tonumber(ARGV[3]), ARGV[4 + n + k - 1])
  redis.call('PEXPIRE', KEYS[k], tonumber(ARGV[3]) + 1000)
end
return lost
`);

/**
 * Hands entries back at shutdown: those still owned get an idle time far past any --claim-idle
 * so the next claim pass of a live worker takes them at once, and a last-error note.
 * KEYS: input stream, last-error hash. ARGV: group, consumer, note, ids...
 */
export const RELEASE = new Script(`
local n = 0
for i = 4, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p > 0 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', 1000000000, 'JUSTID')
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[3])
    n = n + 1
  end
end
return n
`);
