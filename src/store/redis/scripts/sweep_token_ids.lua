local function sweep(revoked, all, prefix, now, limit)
  local ended = redis.call('ZRANGEBYSCORE', all, '-inf', now, 'LIMIT', 0, limit)
  for _, field in ipairs(ended) do
    redis.call('HDEL', revoked, field)
    redis.call('ZREM', all, field)
    local account = string.match(field, '^t%z([^%z]*)%z')
    if account then redis.call('ZREM', prefix .. 'acct:' .. account .. ':tokrevs', field) end
  end
  return #ended
end
