local function audit()
  local record = ARGV[#ARGV - 1]
  if record ~= '' then
    redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', ARGV[#ARGV], '*', 'a', record)
  end
end
