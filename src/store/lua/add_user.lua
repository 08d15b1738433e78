-- A user's record, written whole or not at all, so that no half-made record can exist.
-- Returns 1, or 0 when the id is another user's. A record of this id under this very username is
-- what an earlier add of the same user left when it stopped before its claim was kept; the
-- caller holds the username's claim, so no live user has that name, and the record is replaced.
-- What `user delete` leaves of a record (its cut-off alone) is no user: the id may be used again,
-- and the cut-off stays.

local user_key = KEYS[1]

local id = ARGV[1]
local username = ARGV[2]
local password_hash = ARGV[3]
local active = ARGV[4]

local existing = redis.call('HGET', user_key, 'username')
if existing and existing ~= username then
  return 0
end
redis.call('HSET', user_key, 'id', id, 'username', username, 'password', password_hash,
  'active', active)
return 1
