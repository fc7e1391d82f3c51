-- KEYS: expiring, revoked, watermarks
-- ARGV: now, key prefix, audit max len, most to take in one run
-- Returns how many `key.expiring` audit records it wrote.
-- Takes each key whose warning time has come off the `expiring` sorted set and, if the key is
-- still live (not revoked, not rotating, not expired, no ancestor revoked, not under its
-- account's issued-before watermark), records `key.expiring` by `system`: taken off and
-- recorded in this one script, so concurrent runs on many nodes record each exactly once.
-- The key hash and audit stream are named from the prefix (layout in keys.rs): they depend on
-- the entry, which a caller cannot know before the script reads it.
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local warned = 0
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, '\0', 1, true)
  if sep then
    local account = string.sub(member, 1, sep - 1)
    local key_id = string.sub(member, sep + 1)
    local hash = ARGV[2] .. 'key:' .. account .. ':' .. key_id
    local raw = redis.call('HGET', hash, 'rec')
    if raw and redis.call('HEXISTS', hash, 'revoked_at') == 0
        and redis.call('HEXISTS', hash, 'rotated_to') == 0 then
      local ok, rec = pcall(cjson.decode, raw)
      if ok and type(rec.expires_at) == 'number' and rec.expires_at > now then
        local live = redis.call('HEXISTS', KEYS[2], 'c\0' .. account .. '\0' .. key_id) == 0
        if type(rec.ancestors) == 'table' then
          for _, ancestor in ipairs(rec.ancestors) do
            if redis.call('HEXISTS', KEYS[2], 'c\0' .. account .. '\0' .. ancestor) == 1 then
              live = false
            end
          end
        end
        local origin = tonumber(rec.origin_issued_at_ms) or 0
        local own = tonumber(rec.issued_at_ms) or 0
        if own == 0 then own = (tonumber(rec.issued_at) or 0) * 1000 end
        if origin == 0 or own < origin then origin = own end
        local mark = tonumber(redis.call('HGET', KEYS[3], account) or '0') or 0
        if origin < mark then live = false end
        if live then
          local left = rec.expires_at - now
          local record = cjson.encode({
            account = account, actor = 'system', peer = cjson.null, action = 'key.expiring',
            target = key_id,
            detail = string.format(
              'expires at %d (in %d d %d h); rotate it before then (authcell keys rotate)',
              rec.expires_at, math.floor(left / 86400), math.floor((left % 86400) / 3600))})
          redis.call('XADD', ARGV[2] .. 'audit:' .. account, 'MAXLEN', '~', ARGV[3], '*', 'a', record)
          warned = warned + 1
        end
      end
    end
  end
end
return warned
