-- KEYS: old key hash, new key hash, account keys, role keys, rotations, revoked, events,
--       lapses, expiring, audit
-- ARGV: old id, new id, new record, expiry score, role id or '', revokes at, now,
--       '1' to revoke the old key now or '', rotations member, revoked field, event,
--       events max len, revocation audit record or '', request id or '', new refresh hash
--       or '' (an SDK-made key), new key's index member, its lapse score or '', its warning
--       score or '', audit record, audit max len
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return {'NOTFOUND'} end
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then return {'REVOKED'} end
local to = redis.call('HGET', KEYS[1], 'rotated_to')
if to then return {'ROTATING', to} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'EXISTS'} end
redis.call('HSET', KEYS[2], 'rec', ARGV[3], 'rotated_from', ARGV[1])
if ARGV[15] ~= '' then redis.call('HSET', KEYS[2], 'refresh', ARGV[15]) end
if ARGV[17] ~= '' then redis.call('ZADD', KEYS[8], ARGV[17], ARGV[16]) end
if ARGV[18] ~= '' then redis.call('ZADD', KEYS[9], ARGV[18], ARGV[16]) end
redis.call('ZADD', KEYS[3], 0, ARGV[2])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2]) end
redis.call('HSET', KEYS[1], 'rotated_to', ARGV[2], 'revokes_at', ARGV[6])
if ARGV[14] ~= '' then redis.call('HSET', KEYS[1], 'rotation_request', ARGV[14]) end
audit()
local id = ''
if ARGV[8] == '1' then
  redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[7])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[8], ARGV[9])
  redis.call('ZREM', KEYS[9], ARGV[9])
  redis.call('HSET', KEYS[6], ARGV[10], ARGV[7])
  id = redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[12], '*', 'e', ARGV[11])
  if ARGV[13] ~= '' then
    redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', ARGV[#ARGV], '*', 'a', ARGV[13])
  end
else
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[9])
  -- The old key now lapses at the end of its overlap, if that comes before its expiry.
  redis.call('ZADD', KEYS[8], 'LT', ARGV[6], ARGV[9])
end
return {'OK', id}
