--[[
  Replaces one item and all its buyers' quotas (start-up rebuild, rebuild after a loss, new sale).

  Input:
    KEYS[1]     <prefix>:gate:{<saleItemId>}:item   hash: available, limit, startsAt, endsAt, epoch
    KEYS[2]     <prefix>:gate:{<saleItemId>}:quota  hash: userId -> units

    ARGV[1]     generation to stamp the item with (admit and release refuse other generations)
    ARGV[2]     available
    ARGV[3]     per-user limit
    ARGV[4]     startsAt, epoch ms
    ARGV[5]     endsAt, epoch ms
    ARGV[6..]   userId, units, userId, units, ...

  Output:
    0
]]
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'available', ARGV[2], 'limit', ARGV[3], 'startsAt', ARGV[4], 'endsAt', ARGV[5], 'epoch', ARGV[1])

-- HSET in chunks: unpack() of a huge table overflows Lua's C stack.
local chunk = {}
for i = 6, #ARGV, 2 do
  chunk[#chunk + 1] = ARGV[i]
  chunk[#chunk + 1] = ARGV[i + 1]
  if #chunk >= 1000 then
    redis.call('HSET', KEYS[2], unpack(chunk))
    chunk = {}
  end
end
if #chunk > 0 then redis.call('HSET', KEYS[2], unpack(chunk)) end
return 0
