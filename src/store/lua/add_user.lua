-- A user's record, written whole or not at all, so that no half-made record can exist.
-- KEYS[1] user hash
-- ARGV[1] id   ARGV[2] username   ARGV[3] password hash (argon2id PHC)   ARGV[4] active '1'/'0'
-- Returns 1, or 0 when the id is another user's. A record of this id under this very username is
-- what an earlier add of the same user left when it stopped before its claim was kept; the
-- caller holds the username's claim, so no live user has that name, and the record is replaced.
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HGET', KEYS[1], 'username') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'username', ARGV[2], 'password', ARGV[3],
  'active', ARGV[4])
return 1
