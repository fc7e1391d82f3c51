-- KEYS: key hash, account keys, role keys, account roles, receipt (unused without one),
--       lapses, expiring
-- ARGV: key id, record, refresh hash or '', expiry score, role id or '', 'custom' or '',
--       receipt or '', receipt ttl, index member, lapse score or '', warning score or ''
if ARGV[7] ~= '' then
  local prior = redis.call('GET', KEYS[5])
  if prior then return {'REPLAY', prior} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
if ARGV[6] == 'custom' and redis.call('HEXISTS', KEYS[4], ARGV[5]) == 0 then return {'NOROLE'} end
redis.call('HSET', KEYS[1], 'rec', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'refresh', ARGV[3]) end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1]) end
if ARGV[7] ~= '' then redis.call('SET', KEYS[5], ARGV[7], 'EX', ARGV[8]) end
if ARGV[10] ~= '' then redis.call('ZADD', KEYS[6], ARGV[10], ARGV[9]) end
if ARGV[11] ~= '' then redis.call('ZADD', KEYS[7], ARGV[11], ARGV[9]) end
audit()
return {'OK'}
