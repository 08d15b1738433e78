-- One refresh, decided atomically: rotate the presented refresh token, recognise a concurrent
-- replay inside the reuse interval, or detect reuse and revoke the whole session.
-- The in-process store (src/store/memory.rs) follows these same steps; keep the two in step.
--
-- KEYS[1] user hash     KEYS[2] session hash     KEYS[3] blacklist entry of the presented jti
-- KEYS[4] user's session index
-- ARGV[1] presented jti           ARGV[2] presented exp (s)      ARGV[3] caller's clock (ms), unused
-- ARGV[4] adopt: '1' lets a token minted elsewhere (no sid) start its session
-- ARGV[5] rotate '1'/'0'          ARGV[6] blacklist '1'/'0'      ARGV[7] reuse interval (ms)
-- ARGV[8] leeway (s)              ARGV[9] next refresh jti       ARGV[10] next access jti
-- ARGV[11] next iat (s)           ARGV[12] next refresh exp (s)  ARGV[13] next access exp (s)
-- ARGV[14] end (s) of an adopted session, '' for none
-- ARGV[15] sid    ARGV[16] user agent    ARGV[17] client address (both recorded on adoption)
-- Returns {outcome} or {outcome, refresh jti, access jti, iat, refresh exp, access exp}.

local jti = ARGV[1]
-- Redis's clock, not the caller's: instances whose clocks differ, and a command that runs late
-- (after a stalled Redis comes back), still measure the reuse interval from the moment the
-- rotation really happened, so a client retrying after a 503 is not taken for a thief.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_str = string.format('%d', now)
local sid = ARGV[15]

-- Keeps the session in the user's index until `keep` (ms); the index outlives its last entry.
-- GT (Redis 7) moves an expiry only forward, in one command.
local function index_until(keep)
  redis.call('ZADD', KEYS[4], keep, sid)
  if redis.call('PEXPIREAT', KEYS[4], string.format('%d', keep), 'GT') == 0
      and redis.call('PTTL', KEYS[4]) == -1 then
    -- A new index has no expiry yet, and GT never sets a first one.
    redis.call('PEXPIREAT', KEYS[4], string.format('%d', keep))
  end
end
local leeway = tonumber(ARGV[8])
local s = redis.call('HMGET', KEYS[2], 'cur', 'rev', 'prev', 'prev_at', 'end',
  'n_r', 'n_a', 'n_iat', 'n_rexp', 'n_aexp')
local cur, rev, prev, prev_at, send = s[1], s[2], s[3], s[4], s[5]

-- The refusal for a user who is not here or not active, else nil; the user is read once, when
-- first asked.
local active
local function user_refusal()
  if active == nil then
    active = redis.call('HGET', KEYS[1], 'active') or false
  end
  if not active then
    return {'no_user'}
  end
  if active ~= '1' then
    return {'inactive'}
  end
  return nil
end

if not cur then
  if ARGV[4] ~= '1' then
    return {'invalid'}
  end
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return {'revoked'}
  end
  -- A token minted elsewhere for a user who is not here, or not active, starts nothing.
  local refused = user_refusal()
  if refused then
    return refused
  end
  cur = jti
  send = ARGV[14]
  local keep = (tonumber(ARGV[2]) + leeway) * 1000
  redis.call('HSET', KEYS[2], 'cur', jti, 'end', send, 'created', now_str,
    'ua', ARGV[16], 'ip', ARGV[17])
  redis.call('PEXPIREAT', KEYS[2], string.format('%d', keep))
  index_until(keep)
end
if rev == '1' then
  return {'revoked'}
end

local grace = prev and jti == prev and now < tonumber(prev_at) + tonumber(ARGV[7])
if jti ~= cur and not grace then
  if ARGV[6] == '1' then
    -- A retired token came back: someone holds a copy. End the family.
    redis.call('HSET', KEYS[2], 'rev', '1')
    redis.call('HDEL', KEYS[2], 'n_r', 'n_a', 'n_iat', 'n_rexp', 'n_aexp')
    redis.call('ZREM', KEYS[4], sid)
    return {'reuse'}
  end
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return {'revoked'}
  end
end

local refused = user_refusal()
if refused then
  return refused
end
local has_end = send and send ~= ''
if has_end and math.floor(now / 1000) >= tonumber(send) then
  return {'invalid'}
end
if grace and s[6] then
  return {'grace', s[6], s[7], s[8], s[9], s[10]}
end

local rexp = tonumber(ARGV[12])
local aexp = tonumber(ARGV[13])
if has_end then
  rexp = math.min(rexp, tonumber(send))
  aexp = math.min(aexp, tonumber(send))
end
rexp = string.format('%d', rexp)
aexp = string.format('%d', aexp)

if ARGV[5] ~= '1' then
  redis.call('HSET', KEYS[2], 'last', now_str)
  return {'kept', jti, ARGV[10], ARGV[11], ARGV[2], aexp}
end

redis.call('HSET', KEYS[2], 'cur', ARGV[9], 'prev', jti, 'prev_at', now_str,
  'n_r', ARGV[9], 'n_a', ARGV[10], 'n_iat', ARGV[11], 'n_rexp', rexp, 'n_aexp', aexp,
  'last', now_str)
-- The record outlives every token of its family, so that a revoked family stays revoked.
local keep = (tonumber(rexp) + leeway) * 1000
redis.call('PEXPIREAT', KEYS[2], string.format('%d', keep), 'GT')
index_until(keep)
if ARGV[6] == '1' then
  local bl_until = (tonumber(ARGV[2]) + leeway) * 1000
  if bl_until > now then
    redis.call('SET', KEYS[3], '1', 'PXAT', string.format('%d', bl_until))
  end
end
return {'rotated', ARGV[9], ARGV[10], ARGV[11], rexp, aexp}
