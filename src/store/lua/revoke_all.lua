-- Ends every session of a user (an operator's logout-all). With a `change`, also changes the user
-- and sets the user's cut-off: tokens minted elsewhere issued at or before that second stay
-- refused, even after a re-activation or should a deleted id come back. Runs after records.lua.
--   'deactivate'  marks the user inactive
--   'password'    sets `password_hash` (`user passwd`)
--   'delete'      removes the record, all but the cut-off
-- Returns how many live sessions were ended, or -1 when a change names no user.

local sessions_key = KEYS[1]
local user_key = KEYS[2]
local legacy_index_key = KEYS[3]

local legacy_session_prefix = ARGV[1]
local change = ARGV[2]
local password_hash = ARGV[3]

if change ~= '' then
  if not redis.call('HGET', user_key, 'username') then
    return -1
  end
  local t = redis.call('TIME')
  if change == 'deactivate' then
    redis.call('HSET', user_key, 'active', '0', 'cut', t[1])
  elseif change == 'password' then
    redis.call('HSET', user_key, 'password', password_hash, 'cut', t[1])
  elseif change == 'delete' then
    redis.call('DEL', user_key)
    redis.call('HSET', user_key, 'cut', t[1])
  else
    return redis.error_reply('unknown change ' .. change)
  end
end
return rare().end_all(sessions_key, legacy_index_key, legacy_session_prefix, now_ms())
