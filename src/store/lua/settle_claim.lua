-- Settles a username's claim, on its one key, only while the claim is still the caller's:
-- 'keep' makes it permanent, 'drop' deletes it. Returns 1 when it did.

local claim_key = KEYS[1]

local id = ARGV[1]
local how = ARGV[2]

if redis.call('GET', claim_key) ~= id then
  return 0
end
if how == 'keep' then
  redis.call('PERSIST', claim_key)
else
  redis.call('DEL', claim_key)
end
return 1
