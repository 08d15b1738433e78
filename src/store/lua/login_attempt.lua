-- Counts one login attempt on a counter whose window starts at its first attempt.
-- KEYS[1] counter    ARGV[1] window (ms)
-- Returns {count, remaining window (ms)}.
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
