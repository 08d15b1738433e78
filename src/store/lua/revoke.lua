-- Revoke one session: by logout (with the presented refresh token, which is also blacklisted) or
-- by id (no token). A token minted elsewhere (no sid) whose session was never seen gets a revoked
-- record, so that it cannot start one later.
--
-- KEYS[1] session hash     KEYS[2] user's session index
-- KEYS[3] blacklist entry of the presented jti (KEYS[1] again when there is no token)
-- ARGV[1] sid              ARGV[2] presented jti, or '' when ending a session by id
-- ARGV[3] presented exp (s), or '0'          ARGV[4] leeway (s)      ARGV[5] adopt '1'/'0'
-- Returns 1 when a live session was revoked, 0 otherwise.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = (tonumber(ARGV[3]) + tonumber(ARGV[4])) * 1000
local exists = redis.call('EXISTS', KEYS[1]) == 1
local was_live = exists and redis.call('HGET', KEYS[1], 'rev') ~= '1'
redis.call('ZREM', KEYS[2], ARGV[1])
if not exists then
  if ARGV[5] ~= '1' or ARGV[2] == '' or keep <= now then
    return 0
  end
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'created', string.format('%d', now))
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', keep))
end
redis.call('HSET', KEYS[1], 'rev', '1')
redis.call('HDEL', KEYS[1], 'n_r', 'n_a', 'n_iat', 'n_rexp', 'n_aexp')
if ARGV[2] ~= '' and keep > now then
  redis.call('SET', KEYS[3], '1', 'PXAT', string.format('%d', keep))
end
if was_live then
  return 1
end
return 0
