-- KEYS: rotations, revoked, events
-- ARGV: now, events max len, key prefix, audit max len, most to revoke in one run
-- Returns the members (`account NUL key id`) it revoked.
-- Revokes rotated keys whose overlap ended by `now`: each is taken off the schedule and revoked
-- in this one script, so concurrent runs on many nodes revoke each exactly once. The key hash,
-- role-keys set, audit stream and the lapses and expiring indexes are named from the prefix (their layout is in keys.rs): they
-- depend on the scheduled entry, which a caller cannot know before the script reads it.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[5]))
local revoked = {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, '\0', 1, true)
  if sep then
    local account = string.sub(member, 1, sep - 1)
    local key_id = string.sub(member, sep + 1)
    local hash = ARGV[3] .. 'key:' .. account .. ':' .. key_id
    if redis.call('HEXISTS', hash, 'rec') == 1 and redis.call('HEXISTS', hash, 'revoked_at') == 0 then
      redis.call('HSET', hash, 'revoked_at', ARGV[1])
      local ok, rec = pcall(cjson.decode, redis.call('HGET', hash, 'rec'))
      if ok and type(rec.role_id) == 'string' then
        redis.call('ZREM', ARGV[3] .. 'acct:' .. account .. ':rolekeys:' .. rec.role_id, key_id)
      end
      redis.call('HSET', KEYS[2], 'c\0' .. account .. '\0' .. key_id, ARGV[1])
      redis.call('ZREM', ARGV[3] .. 'lapses', member)
      redis.call('ZREM', ARGV[3] .. 'expiring', member)
      local event = cjson.encode({CredentialRevoked = {account = account, id = key_id}})
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'e', event)
      local to = redis.call('HGET', hash, 'rotated_to') or '?'
      local record = cjson.encode({
        account = account, actor = 'system', peer = cjson.null, action = 'key.revoked',
        target = key_id, detail = 'rotation overlap ended (replaced by ' .. to .. ')'})
      redis.call('XADD', ARGV[3] .. 'audit:' .. account, 'MAXLEN', '~', ARGV[4], '*', 'a', record)
      table.insert(revoked, member)
    end
  end
end
return revoked
