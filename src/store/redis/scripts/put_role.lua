-- KEYS: account roles, role names, all roles, events
-- ARGV: role id, expected old record or '' (create), new record, old name or '', new name,
--       all-roles field, event, max len
local old = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if old then return 'EXISTS' end
else
  if not old then return 'NOTFOUND' end
  -- A retry of an update that was applied: done already.
  if old == ARGV[3] then return 'OK' end
  if old ~= ARGV[2] then return 'CONFLICT' end
end
if ARGV[4] ~= ARGV[5] then
  if redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then return 'NAMETAKEN' end
  if ARGV[4] ~= '' then redis.call('HDEL', KEYS[2], ARGV[4]) end
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[6], ARGV[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[7])
audit()
return 'OK'
