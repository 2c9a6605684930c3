--[[
  Changes one item's terms in place (stock added, a sale edited or cancelled): available moves by
  a delta, so admissions in flight stay counted; the limit and the window are replaced; the
  buyers' quotas are not touched.

  Input:
    KEYS[1]     <prefix>:gate:{<saleItemId>}:item   hash: available, limit, startsAt, endsAt, epoch

    ARGV[1]     generation the caller believes current (the value of <prefix>:gate:{fence}:epoch)
    ARGV[2]     delta to available (may be negative)
    ARGV[3]     per-user limit
    ARGV[4]     startsAt, epoch ms
    ARGV[5]     endsAt, epoch ms

  Output:
    {0, available}   done; available after the change
    {4, 1, 0}        no item hash (never loaded, or lost): nothing written, a rebuild restores it whole
    {5, 1, 0}        the item belongs to another generation (fenced); nothing changed
]]
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return {4, 1, 0} end
if epoch ~= ARGV[1] then return {5, 1, 0} end
local available = redis.call('HINCRBY', KEYS[1], 'available', tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'limit', ARGV[3], 'startsAt', ARGV[4], 'endsAt', ARGV[5])
return {0, available}
