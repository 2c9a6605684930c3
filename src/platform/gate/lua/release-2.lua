--[[
  Gives units back: available goes up, the buyer's quota down (its field is removed at zero).

  Input (2 keys per line; on a Redis Cluster the gate calls this with one line at a time):
    KEYS[2i-1]  <prefix>:gate:{<saleItemId>}:item   hash: available, limit, startsAt, endsAt, epoch
    KEYS[2i]    <prefix>:gate:{<saleItemId>}:quota  hash: userId -> units

    ARGV[1]     generation the caller believes current (the value of <prefix>:gate:{fence}:epoch)
    ARGV[2]     userId
    ARGV[2+i]   quantity of line i

  Output:
    {0}      done. Lines whose item hash is missing are skipped: a release never creates a
             half item (a rebuild restores it whole from the database).
    {5, i}   line i's item belongs to another generation; nothing changed.
]]
local token, user = ARGV[1], ARGV[2]
local n = #KEYS / 2

local present = {}
for i = 1, n do
  local epoch = redis.call('HGET', KEYS[2 * i - 1], 'epoch')
  if epoch then
    if epoch ~= token then return {5, i} end
    present[i] = true
  end
end

for i = 1, n do
  if present[i] then
    local q = tonumber(ARGV[2 + i])
    redis.call('HINCRBY', KEYS[2 * i - 1], 'available', q)
    if redis.call('HINCRBY', KEYS[2 * i], user, -q) <= 0 then redis.call('HDEL', KEYS[2 * i], user) end
  end
end
return {0}
