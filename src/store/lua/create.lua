-- A login starts a session: its record, and its entry in the user's session index.
-- KEYS[1] session hash     KEYS[2] user's session index
-- ARGV[1] sid   ARGV[2] refresh jti   ARGV[3] end (s) or ''   ARGV[4] user agent   ARGV[5] client address
-- ARGV[6] keep until (ms): when the record may go (its refresh token's exp plus leeway)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'end', ARGV[3], 'created', string.format('%d', now),
  'ua', ARGV[4], 'ip', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
if redis.call('PEXPIREAT', KEYS[2], ARGV[6], 'GT') == 0 and redis.call('PTTL', KEYS[2]) == -1 then
  redis.call('PEXPIREAT', KEYS[2], ARGV[6])
end
return 1
