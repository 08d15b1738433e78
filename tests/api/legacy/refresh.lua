-- One refresh, decided atomically by the state table at the top of src/store/mod.rs. The
-- in-process store (src/store/memory.rs) takes the same steps; the contract tests hold the two
-- to the same answers.
-- Returns {outcome} or {kind, refresh jti, iat, exp, session end ('' for none), remember '1'/'0'}.

local user_key = KEYS[1]
local session_key = KEYS[2]
local presented_bl_key = KEYS[3]
local index_key = KEYS[4]

local jti = ARGV[1]
local jti_iat = ARGV[2]
local jti_exp = ARGV[3]
local foreign = ARGV[4]
local adopt = ARGV[5]
local epoch = ARGV[6]
local rotate = ARGV[7]
local blacklist = ARGV[8]
local reuse_interval_ms = ARGV[9]
local idle_timeout_ms = ARGV[10]
local leeway = ARGV[11]
local next_jti = ARGV[12]
local next_iat = ARGV[13]
local next_exp = ARGV[14]
local adopt_end = ARGV[15]
local sid = ARGV[16]
local user_agent = ARGV[17]
local client_address = ARGV[18]
local blacklist_prefix = ARGV[19]

-- Redis's clock, not the caller's: instances whose clocks differ, and a command that runs late
-- (after a stalled Redis comes back), still measure intervals from the moment things happened.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_str = string.format('%d', now)

-- When the entries of a token expiring at `exp` (s) may go, in ms.
local function keep_ms(exp)
  return (tonumber(exp) + tonumber(leeway)) * 1000
end

-- Keeps the session in the user's index until `keep` (ms); the index outlives its last entry.
-- GT (Redis 7) moves an expiry only forward, in one command.
local function index_until(keep)
  local at = string.format('%d', keep)
  redis.call('ZADD', index_key, at, sid)
  if redis.call('PEXPIREAT', index_key, at, 'GT') == 0 and redis.call('PTTL', index_key) == -1 then
    -- A new index has no expiry yet, and GT never sets a first one.
    redis.call('PEXPIREAT', index_key, at)
  end
end

local function end_session()
  redis.call('HSET', session_key, 'rev', '1')
  redis.call('HDEL', session_key, 'pend', 'pi', 'pe')
  redis.call('ZREM', index_key, sid)
end

local user = redis.call('HMGET', user_key, 'active', 'cut')
if not user[1] then
  return {'no_user'}
end
if user[1] ~= '1' then
  return {'inactive'}
end
if foreign == '1' and (tonumber(jti_iat) < tonumber(epoch)
    or tonumber(jti_iat) <= tonumber(user[2] or '0')) then
  return {'invalid'}
end

local s = redis.call('HMGET', session_key, 'cur', 'rev', 'end', 'created', 'last', 'ce', 'pend',
  'pi', 'pe', 'br')
local cur, rev, session_end, created, last = s[1], s[2], s[3], s[4], s[5]
local cur_exp, pend, pend_iat, pend_exp, browser_session = s[6], s[7], s[8], s[9], s[10]

-- When the presented token was retired (ms), false when it was not; read once, when first asked.
local retired_at
local function retired()
  if retired_at == nil then
    retired_at = redis.call('GET', presented_bl_key) or false
  end
  return retired_at
end

if not cur then
  -- A token minted elsewhere starts its session at its first refresh here.
  if foreign ~= '1' or adopt ~= '1' then
    return {'invalid'}
  end
  if retired() then
    return {'revoked'}
  end
  cur, cur_exp, session_end, created = jti, jti_exp, adopt_end, now_str
  redis.call('HSET', session_key, 'cur', jti, 'ce', jti_exp, 'end', adopt_end, 'created', now_str,
    'ua', user_agent, 'ip', client_address)
  redis.call('PEXPIREAT', session_key, string.format('%d', keep_ms(jti_exp)))
  index_until(keep_ms(jti_exp))
end
if rev == '1' then
  return {'revoked'}
end
if idle_timeout_ms ~= '' and now >= tonumber(last or created or '0') + tonumber(idle_timeout_ms) then
  end_session()
  return {'invalid'}
end
local has_end = session_end and session_end ~= ''
if has_end and math.floor(now / 1000) >= tonumber(session_end) then
  return {'invalid'}
end

local is_current = jti == cur
local is_pending = pend and jti == pend
if not is_current and not is_pending then
  local at = retired()
  local forgiven = blacklist ~= '1' or (at and now < tonumber(at) + tonumber(reuse_interval_ms))
  if not forgiven then
    -- Retired too long ago, or never issued by this session: someone holds a copy.
    end_session()
    return {'reuse'}
  end
end

local remember = '1'
if browser_session == '1' then
  remember = '0'
end
local end_out = session_end or ''

if rotate ~= '1' then
  redis.call('HSET', session_key, 'last', now_str)
  return {'kept', jti, jti_iat, jti_exp, end_out, remember}
end

if pend and not is_pending then
  -- The current token again, or a recently retired one: the same pending successor.
  redis.call('HSET', session_key, 'last', now_str)
  local kind = 'forgiven'
  if is_current then
    kind = 'repeated'
  end
  return {kind, pend, pend_iat, pend_exp, end_out, remember}
end

local exp = tonumber(next_exp)
if has_end then
  exp = math.min(exp, tonumber(session_end))
end
exp = string.format('%d', exp)
local kind
if is_pending then
  -- The successor is presented: it becomes current and its parent is retired now.
  kind = 'promoted'
  redis.call('HSET', session_key, 'cur', pend, 'ce', pend_exp, 'pend', next_jti, 'pi', next_iat,
    'pe', exp, 'last', now_str)
  if blacklist == '1' then
    local until_ms = keep_ms(cur_exp or pend_exp)
    if until_ms > now then
      redis.call('SET', blacklist_prefix .. cur, now_str, 'PXAT', string.format('%d', until_ms))
    end
  end
else
  kind = 'issued'
  if not is_current then
    kind = 'forgiven'
  end
  redis.call('HSET', session_key, 'pend', next_jti, 'pi', next_iat, 'pe', exp, 'last', now_str)
end
-- The record outlives every token of its family, so that an ended family stays ended.
redis.call('PEXPIREAT', session_key, string.format('%d', keep_ms(exp)), 'GT')
index_until(keep_ms(exp))
return {kind, next_jti, next_iat, exp, end_out, remember}
