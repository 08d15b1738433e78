-- One user imported from another system's user table, written whole or not at all. The password
-- hash is replaced only when it differs from the one this id last imported (`src`), so that a
-- re-run leaves a hash upgraded at login, or changed with `user passwd`, alone. An import that
-- makes an active user inactive deactivates it as `user deactivate` does (revoke_all.lua): the
-- cut-off is set and every session ended. The caller holds the username's claim. Runs after
-- records.lua.
-- Returns 'created' or 'updated'.

local user_key = KEYS[1]
local sessions_key = KEYS[2]
local legacy_index_key = KEYS[3]

local id = ARGV[1]
local username = ARGV[2]
local password_hash = ARGV[3]
local active = ARGV[4]
local legacy_session_prefix = ARGV[5]

local old = redis.call('HMGET', user_key, 'username', 'src', 'active')
local existed = old[1] ~= false
if old[2] ~= password_hash then
  redis.call('HSET', user_key, 'password', password_hash, 'src', password_hash)
end
redis.call('HSET', user_key, 'id', id, 'username', username, 'active', active)
if existed and old[3] == '1' and active == '0' then
  local t = redis.call('TIME')
  redis.call('HSET', user_key, 'cut', t[1])
  rare().end_all(sessions_key, legacy_index_key, legacy_session_prefix,
    tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
if existed then
  return 'updated'
end
return 'created'
