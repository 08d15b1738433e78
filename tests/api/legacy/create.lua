-- A login starts a session: its record, and its entry in the user's session index.

local session_key = KEYS[1]
local index_key = KEYS[2]

local sid = ARGV[1]
local jti = ARGV[2]
local jti_exp = ARGV[3]
local session_end = ARGV[4]
local browser_session = ARGV[5]
local user_agent = ARGV[6]
local client_address = ARGV[7]
local keep_until_ms = ARGV[8]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', session_key, 'cur', jti, 'ce', jti_exp, 'end', session_end, 'created',
  string.format('%d', now), 'ua', user_agent, 'ip', client_address)
if browser_session == '1' then
  redis.call('HSET', session_key, 'br', '1')
end
redis.call('PEXPIREAT', session_key, keep_until_ms)
redis.call('ZADD', index_key, keep_until_ms, sid)
if redis.call('PEXPIREAT', index_key, keep_until_ms, 'GT') == 0
    and redis.call('PTTL', index_key) == -1 then
  redis.call('PEXPIREAT', index_key, keep_until_ms)
end
return 1
