-- A login upgrades a user's password hash (an imported Django one) to refreshd's own: only while
-- the record still holds the hash the login checked, so that a password changed in between wins.
-- Returns 1 when replaced, 0 otherwise.

local user_key = KEYS[1]

local old_hash = ARGV[1]
local new_hash = ARGV[2]

if redis.call('HGET', user_key, 'password') ~= old_hash then
  return 0
end
redis.call('HSET', user_key, 'password', new_hash)
return 1
