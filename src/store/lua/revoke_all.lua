-- End every session of a user ("log out everywhere", or an operator's logout-all).
-- KEYS[1] user's session index
-- ARGV[1] the prefix of the user's session keys ("refreshd:{u:<id>}:s:"); each session key is the
-- prefix and a member of the index, in the same hash slot as the index.
-- Returns how many live sessions were revoked.
local revoked = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. sid
  if redis.call('EXISTS', key) == 1 and redis.call('HGET', key, 'rev') ~= '1' then
    redis.call('HSET', key, 'rev', '1')
    redis.call('HDEL', key, 'n_r', 'n_a', 'n_iat', 'n_rexp', 'n_aexp')
    revoked = revoked + 1
  end
end
redis.call('DEL', KEYS[1])
return revoked
