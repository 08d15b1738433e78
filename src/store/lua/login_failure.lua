-- Counts one failed login on a counter whose window starts at its first failure.
-- KEYS[1] counter    ARGV[1] window (ms)
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
