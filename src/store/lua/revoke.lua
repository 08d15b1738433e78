-- Logout: revoke the session of the presented refresh token, and blacklist that token.
-- A token minted elsewhere (no sid) whose session was never seen gets a revoked record, so that
-- it cannot start one later.
--
-- KEYS[1] session hash     KEYS[2] blacklist entry of the presented jti
-- ARGV[1] presented jti    ARGV[2] presented exp (s)    ARGV[3] now (ms)
-- ARGV[4] leeway (s)       ARGV[5] adopt '1'/'0'
-- Returns 1 when a session was revoked, 0 when there was none.

local now = tonumber(ARGV[3])
local keep = (tonumber(ARGV[2]) + tonumber(ARGV[4])) * 1000
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[5] ~= '1' or keep <= now then
    return 0
  end
  redis.call('HSET', KEYS[1], 'cur', ARGV[1], 'created', ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', keep))
end
redis.call('HSET', KEYS[1], 'rev', '1')
redis.call('HDEL', KEYS[1], 'n_r', 'n_a', 'n_iat', 'n_rexp', 'n_aexp')
if keep > now then
  redis.call('SET', KEYS[2], '1', 'PXAT', string.format('%d', keep))
end
return 1
