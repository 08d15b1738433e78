-- Ends every session of a user (an operator's logout-all), and with `deactivate` also marks the
-- user inactive and sets the user's cut-off: tokens minted elsewhere issued at or before that
-- second stay refused, even after a re-activation.
-- Returns how many live sessions were ended, or -1 when `deactivate` names no user.

local index_key = KEYS[1]
local user_key = KEYS[2]

local session_prefix = ARGV[1]
local deactivate = ARGV[2]

if deactivate == '1' then
  if redis.call('EXISTS', user_key) == 0 then
    return -1
  end
  local t = redis.call('TIME')
  redis.call('HSET', user_key, 'active', '0', 'cut', t[1])
end
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', index_key, 0, -1)) do
  local key = session_prefix .. sid
  if redis.call('EXISTS', key) == 1 and redis.call('HGET', key, 'rev') ~= '1' then
    redis.call('HSET', key, 'rev', '1')
    redis.call('HDEL', key, 'pend', 'pi', 'pe')
    ended = ended + 1
  end
end
redis.call('DEL', index_key)
return ended
