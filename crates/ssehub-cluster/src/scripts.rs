//! The Lua scripts that make each step on the shared log atomic in Redis, and their keys.
//!
//! Redis runs a script alone: no other command of any node interleaves with it. So the
//! sequence number, the log entry, the per-topic index and the byte count of an append change
//! together (every node sees an event entirely or not at all, under one order), and a read
//! returns entries and the retention floor as of one instant (ARCHITECTURE.md, invariant 8).
//!
//! # Keys
//!
//! All under `ssehub:{NAME}:` (the braces are a Redis Cluster hash tag: every key of one
//! cluster of hubs would land on one shard):
//!
//! - `seq` — the last sequence number given (INCRBY);
//! - `log` — the stream of events, entry id `<seq>-0`, fields `t` (topics, LF-separated),
//!   `y` (event type, empty for `message`), `d` (data), `p` (`1` if private), `r` (retry ms,
//!   or empty), `z` (bytes of its SSE encoding), `ts` (Redis time of the append, ms), `i`
//!   (the publisher's id, or empty; absent from entries written before publisher ids), `k`
//!   (the event's key, or empty) and `x` (`1` for a tombstone) (both absent from entries
//!   written before keys);
//! - `pubids` — the publisher-id index: a hash, each retained event's publisher id → its
//!   sequence number. `APPEND` checks and fills it in the script that appends (so two nodes
//!   appending one id cannot both succeed), and the sweeps remove a deleted event's id in the
//!   script that deletes it;
//! - `keys` — the key index: a hash, each `<topic>\n<key>` of the retained events → the
//!   sequence number of the key's newest event in that topic; and `keys:<topic>`, a sorted
//!   set per topic of the sequence numbers `keys` points to (what a snapshot reads, in
//!   order). `APPEND` moves a key's entry to the new event in the script that appends it;
//!   the sweeps remove the entries of a key's newest event in the script that deletes it;
//! - `ktopics` — the set of topics that have a `keys:<topic>`, for snapshots of patterns;
//! - `logid` — the log id (8 hex digits), set once (SET NX) by the first node to start;
//! - `first` — the retention floor: the oldest sequence number retained;
//! - `bytes` — the bytes (of SSE encoding) retained;
//! - `topic:<topic>` — the per-topic index: a sorted set of the sequence numbers of the
//!   topic's events, so that replaying a quiet topic does not scan the log;
//! - `live` — not a key but the pub/sub channel of live-only events (`relay.rs`);
//! - `subs:<node>` — one node's records (`directory.rs`: its active Mercure streams), a hash
//!   that expires unless the node's heartbeat keeps it (`node.rs`);
//! - `nodes` — the ids of the nodes that have records, so that a reader finds the hashes
//!   without a `SCAN` of every key; a node whose hash has expired is removed by the next
//!   heartbeat of any node.
//!
//! With per-topic rules (`[[history.topics]]`), also:
//!
//! - `ruled` — a hash: each topic a rule applied to at its last append → that rule's pattern
//!   (the sweep looks its bounds up by pattern, so reordering or adding rules does not make
//!   a topic's record name another rule);
//! - `tbytes` — a hash: each topic of `ruled` → the bytes of its retained events;
//! - `floors` — a sorted set: each topic that per-topic retention deleted an event of (the
//!   event's every topic, not only the one whose rule deleted it) → the highest sequence
//!   number deleted (the disk store's `dropped_upto`); entries below `first` are dropped;
//! - `rcursor` — where the per-topic sweep's walk over `ruled` (`HSCAN`) goes on;
//! - `kcursor` — a hash: each compacted topic (`keep = "latest-per-key"`) → the sequence
//!   number its compaction looked at last (the next call goes on after it).
//!
//! With `min_replicas` (`replicated.rs`), also:
//!
//! - `committed` — the replicated watermark: every event up to it is on `min_replicas`
//!   replicas (a `WAIT` after its append, or after a later one, said so). It only rises;
//! - `commits` — a short stream (about the last 1,000 rises of `committed`, field `s`) that
//!   the tails block on, so that a rise wakes every node at once;
//! - `probe` — written before the `WAIT` that confirms events whose own `WAIT` failed.

/// The keys of one cluster of hubs.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(name: &str) -> Self {
        Keys {
            prefix: format!("ssehub:{{{name}}}:"),
        }
    }

    pub(crate) fn key(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// The prefix of the per-topic index keys (a topic's key is this and its name).
    pub(crate) fn topic_prefix(&self) -> String {
        self.key("topic:")
    }

    /// The hash of the records of node `id` (with an empty id: the prefix of every node's).
    pub(crate) fn node_records(&self, id: &str) -> String {
        self.key(&format!("subs:{id}"))
    }
}

/// Opening: the log id (set if absent), the last sequence number, the floor, and the
/// replicated watermark (the last sequence number when there is none yet: events stored
/// before any node waited for replicas count as replicated).
/// KEYS: logid, seq, first, committed. ARGV: a fresh log id.
pub(crate) const OPEN: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local log = redis.call('GET', KEYS[1])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = tonumber(redis.call('GET', KEYS[3]) or '1')
local committed = tonumber(redis.call('GET', KEYS[4]) or string.format('%d', last))
return {log, last, first, committed}
";

/// Raising the replicated watermark to ARGV[1] (never lowering it), and waking the tails.
/// KEYS: committed, commits. Returns the watermark.
pub(crate) const COMMIT: &str = r"
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local s = tonumber(ARGV[1])
if s <= c then return c end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*', 's', ARGV[1])
return s
";

/// Before confirming events past the watermark: when the log is ahead of it, a write of
/// this connection after every one of those events (so that a `WAIT` that then succeeds
/// covers them all). KEYS: seq, committed, probe. Returns the last sequence number, or 0
/// when nothing waits.
pub(crate) const PENDING: &str = r"
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local c = tonumber(redis.call('GET', KEYS[2]) or '0')
if s <= c then return 0 end
redis.call('SET', KEYS[3], string.format('%d', s))
return s
";

/// Appending a batch: the sequence numbers, the entries, the index, the byte count, and for
/// the topics under a per-topic rule their rule and bytes. Refuses when the log id is not the
/// one the node opened (Redis lost its data and another node started a new log), so that no
/// id is given to two events (invariant 6).
/// A publisher id that a retained event has, or that two events of the batch have, refuses
/// the whole batch before anything is written.
/// A keyed event becomes its key's newest in each of its topics (`keys`, `keys:<topic>`).
/// KEYS: seq, log, bytes, logid, ruled, tbytes, pubids, keys, ktopics. ARGV: topic key
/// prefix, the node's log id, the event count, then per event: topics, type, data, private,
/// retry, encoded size, publisher id (or empty), binary (`1`, else empty: the data is then the
/// event's raw bytes), key (or empty), `1` for a tombstone; then the count of ruled topics and per ruled topic: topic, its
/// rule's pattern, the bytes the batch adds to it. Returns the first sequence number, or
/// `-k` when the publisher id of the batch's `k`-th event (from 1) is taken.
pub(crate) const APPEND: &str = r"
if redis.call('GET', KEYS[4]) ~= ARGV[2] then
  return redis.error_reply('ssehub: the log id in Redis is not the one this node opened; restart the node')
end
local n = tonumber(ARGV[3])
local seen = {}
for i = 0, n - 1 do
  local id = ARGV[4 + i * 10 + 6]
  if id ~= '' then
    local s = redis.call('HGET', KEYS[7], id)
    if seen[id] or (s and #redis.call('XRANGE', KEYS[2], s .. '-0', s .. '-0') > 0) then
      return -(i + 1)
    end
    seen[id] = true
  end
end
local last = redis.call('INCRBY', KEYS[1], n)
local first = last - n + 1
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local total = 0
for i = 0, n - 1 do
  local b = 4 + i * 10
  local seq = string.format('%d', first + i)
  redis.call('XADD', KEYS[2], seq .. '-0', 't', ARGV[b], 'y', ARGV[b + 1], 'd', ARGV[b + 2],
    'p', ARGV[b + 3], 'r', ARGV[b + 4], 'z', ARGV[b + 5], 'ts', now, 'i', ARGV[b + 6],
    'b', ARGV[b + 7], 'k', ARGV[b + 8], 'x', ARGV[b + 9])
  if ARGV[b + 6] ~= '' then redis.call('HSET', KEYS[7], ARGV[b + 6], seq) end
  if ARGV[b + 8] ~= '' then
    for topic in string.gmatch(ARGV[b], '[^\n]+') do
      local field = topic .. '\n' .. ARGV[b + 8]
      local old = redis.call('HGET', KEYS[8], field)
      if old then redis.call('ZREM', KEYS[8] .. ':' .. topic, old) end
      redis.call('HSET', KEYS[8], field, seq)
      redis.call('ZADD', KEYS[8] .. ':' .. topic, first + i, seq)
      redis.call('SADD', KEYS[9], topic)
    end
  end
  total = total + tonumber(ARGV[b + 5])
  for topic in string.gmatch(ARGV[b], '[^\n]+') do
    redis.call('ZADD', ARGV[1] .. topic, first + i, seq)
  end
end
redis.call('INCRBY', KEYS[3], string.format('%d', total))
local r = 4 + n * 10
for j = 0, tonumber(ARGV[r]) - 1 do
  local k = r + 1 + j * 3
  redis.call('HSET', KEYS[5], ARGV[k], ARGV[k + 1])
  redis.call('HINCRBY', KEYS[6], ARGV[k], ARGV[k + 2])
end
return first
";

/// Reading by scanning the log (for patterns). KEYS: log, first, floors. ARGV: after, until,
/// the most entries. Returns the floor, how far the read looked (`scanned_to`), the count of
/// per-topic floors and each as topic and floor, then 12 values per entry: its id and the
/// values of its fields in order (`i`, `b`, `k`, `x` empty for an entry written before them).
///
/// The per-topic floors are those at or above the read's start, of every topic: Lua cannot
/// match Mercure's URI templates, so the node matches them against the patterns. Lower
/// floors cannot make the read incomplete, so a reader near the log's head gets only the
/// topics retention trimmed near the head.
pub(crate) const READ_SCAN: &str = r"
local floor = tonumber(redis.call('GET', KEYS[2]) or '1')
local from = math.max(tonumber(ARGV[1]) + 1, floor)
local floors = redis.call('ZRANGEBYSCORE', KEYS[3], from, '+inf', 'WITHSCORES')
local out = {floor, tonumber(ARGV[2]), #floors / 2}
for _, v in ipairs(floors) do table.insert(out, v) end
if from > tonumber(ARGV[2]) then return out end
local entries = redis.call('XRANGE', KEYS[1], string.format('%d-0', from), ARGV[2] .. '-0',
  'COUNT', ARGV[3])
if #entries == tonumber(ARGV[3]) then
  out[2] = tonumber(string.match(entries[#entries][1], '^(%d+)'))
end
for _, e in ipairs(entries) do
  table.insert(out, e[1])
  for j = 2, 14, 2 do table.insert(out, e[2][j]) end
  for j = 16, 22, 2 do table.insert(out, e[2][j] or '') end
end
return out
";

/// Reading through the per-topic index (or, for a snapshot, through `keys:<topic>`). KEYS:
/// log, first, floors, then each topic's index.
/// ARGV: after, until, the most events, then each topic (in the order of their indexes).
/// Returns as [`READ_SCAN`] does, with the per-topic floors of these topics.
pub(crate) const READ_INDEX: &str = r"
local floor = tonumber(redis.call('GET', KEYS[2]) or '1')
local from = math.max(tonumber(ARGV[1]) + 1, floor)
local limit = tonumber(ARGV[3])
local out = {floor, tonumber(ARGV[2]), 0}
for i, f in ipairs(redis.call('ZMSCORE', KEYS[3], unpack(ARGV, 4))) do
  if f then
    table.insert(out, ARGV[3 + i]); table.insert(out, f); out[3] = out[3] + 1
  end
end
if from > tonumber(ARGV[2]) then return out end
local seen, seqs = {}, {}
for k = 4, #KEYS do
  for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[k], from, ARGV[2], 'LIMIT', 0, limit)) do
    if not seen[s] then seen[s] = true; table.insert(seqs, tonumber(s)) end
  end
end
table.sort(seqs)
if #seqs >= limit then out[2] = seqs[limit] end
for i = 1, math.min(limit, #seqs) do
  local id = string.format('%d-0', seqs[i])
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], id, id)) do
    table.insert(out, e[1])
    for j = 2, 14, 2 do table.insert(out, e[2][j]) end
    for j = 16, 22, 2 do table.insert(out, e[2][j] or '') end
  end
end
return out
";

/// Retention of the whole log: raises the floor past the oldest events while the log is
/// over its count, byte or age bound (`-1` for none), and deletes them from the log and the
/// index, in one step. The count is the log's length (`XLEN`), so events a per-topic rule
/// deleted are not counted. The floor stops after the last event deleted, not at the next
/// one retained: the events between were deleted by per-topic rules, whose floors already
/// tell their topics' readers, and raising the log's floor over them would tell every other
/// reader of a gap that is not theirs. Each deleted event's publisher id leaves `pubids`, and
/// the keys it was the newest of leave `keys`.
/// KEYS: seq, log, first, bytes, tbytes, floors, pubids, keys, ktopics. ARGV:
/// topic key prefix, max events, max bytes, max age (ms), the most entries to delete in this
/// call (so that one call never holds Redis for long). Returns the floor, the last sequence
/// number, and 1 when the budget ran out (call again).
pub(crate) const SWEEP: &str = r"
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = tonumber(redis.call('GET', KEYS[3]) or '1')
local bytes = tonumber(redis.call('GET', KEYS[4]) or '0')
local count = redis.call('XLEN', KEYS[2])
local max_events, max_bytes, max_age = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ruled = redis.call('EXISTS', KEYS[5]) == 1
local floor = first
local removed, gone, topics, done, more = 0, 0, {}, false, 0
local budget = tonumber(ARGV[5])
local cursor = first
while not done and cursor <= last do
  local batch = redis.call('XRANGE', KEYS[2], string.format('%d-0', cursor), '+', 'COUNT', 256)
  if #batch == 0 then break end
  for _, e in ipairs(batch) do
    local seq = tonumber(string.match(e[1], '^(%d+)'))
    local f = e[2]
    local over_count = max_events >= 0 and count - gone > max_events
    local over_bytes = max_bytes >= 0 and bytes - removed > max_bytes
    local too_old = max_age >= 0 and now - tonumber(f[14]) > max_age
    if not over_count and not over_bytes and not too_old then done = true; break end
    if budget == 0 then more = 1; done = true; break end
    budget = budget - 1
    gone = gone + 1
    if f[16] and f[16] ~= '' and redis.call('HGET', KEYS[7], f[16]) == string.format('%d', seq) then
      redis.call('HDEL', KEYS[7], f[16])
    end
    if f[20] and f[20] ~= '' then
      for topic in string.gmatch(f[2], '[^\n]+') do
        local field = topic .. '\n' .. f[20]
        if redis.call('HGET', KEYS[8], field) == string.format('%d', seq) then
          redis.call('HDEL', KEYS[8], field)
        end
        redis.call('ZREM', KEYS[8] .. ':' .. topic, string.format('%d', seq))
        if redis.call('ZCARD', KEYS[8] .. ':' .. topic) == 0 then redis.call('SREM', KEYS[9], topic) end
      end
    end
    local size = tonumber(f[12])
    removed = removed + size
    topics[f[2]] = true
    if ruled then
      for topic in string.gmatch(f[2], '[^\n]+') do
        if redis.call('HEXISTS', KEYS[5], topic) == 1 then
          redis.call('HINCRBY', KEYS[5], topic, -size)
        end
      end
    end
    floor = seq + 1
    cursor = seq + 1
  end
end
if floor > last + 1 then floor = last + 1 end
if floor > first then
  redis.call('SET', KEYS[3], string.format('%d', floor))
  redis.call('XTRIM', KEYS[2], 'MINID', string.format('%d-0', floor))
  redis.call('DECRBY', KEYS[4], string.format('%d', removed))
  for list in pairs(topics) do
    for topic in string.gmatch(list, '[^\n]+') do
      redis.call('ZREMRANGEBYSCORE', ARGV[1] .. topic, '-inf', '(' .. string.format('%d', floor))
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. string.format('%d', floor))
end
return {floor, last, more}
";

/// Per-topic retention (`[[history.topics]]`): walks part of `ruled` (`HSCAN` from
/// `rcursor`, about ARGV[2] topics) and, for each topic whose events break its rule's
/// bounds, deletes its oldest events until they do not. Each deleted event leaves the log
/// and the index of every topic it has, its bytes leave `bytes` and the `tbytes` of its ruled
/// topics, and the floor of each of its topics rises to it — in this one script, so that no
/// reader sees an event gone while its topic's floor is below it (ARCHITECTURE.md,
/// invariant 8). An event appended less than a grace ago (by Redis's clock), or past the
/// replicated watermark, is left: every node's tail must have read an event before a rule
/// deletes it, or the node would see a hole in the log. Topics with no event left leave
/// `ruled`, each deleted event's publisher id leaves `pubids`, and the keys it was the newest
/// of leave `keys`.
/// A rule with `keep = latest-per-key` also compacts its topics (from `kcursor`, a hash of
/// each topic's compaction cursor, up to 1,000 events per topic and call): a keyed event that
/// is not its key's newest in the topic goes without raising a floor (the newer value is what
/// a resume brings), a tombstone past the rule's grace goes and raises it.
/// KEYS: log, bytes, ruled, tbytes, floors, rcursor, committed, pubids, keys, ktopics,
/// kcursor. ARGV: topic key prefix, topics per call, the most events to delete in this call,
/// the grace (ms), 1 to stop at the replicated watermark, the rule count, then per rule:
/// pattern, max events, max bytes, max age (ms), tombstone grace (ms) under compaction, `-1`
/// for none. A topic whose pattern is not among the rules (another node's
/// configuration) is left as it is. Returns the cursor the walk started from, the one it
/// goes on from (`0`: the walk is over), 1 when the budget ran out (the same topics are
/// walked again), then each raised floor as topic and floor.
pub(crate) const TOPIC_SWEEP: &str = r"
local prefix = ARGV[1]
local budget = tonumber(ARGV[3])
local rules = {}
for i = 0, tonumber(ARGV[6]) - 1 do
  local b = 7 + i * 5
  if not rules[ARGV[b]] then
    rules[ARGV[b]] = {tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]),
      tonumber(ARGV[b + 4])}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local young = now - tonumber(ARGV[4])
local horizon = math.huge
if ARGV[5] == '1' then horizon = tonumber(redis.call('GET', KEYS[7]) or '0') end
local cursor = redis.call('GET', KEYS[6]) or '0'
local scan = redis.call('HSCAN', KEYS[3], cursor, 'COUNT', ARGV[2])
local raised, removed, exhausted = {}, 0, false
-- Deletes entry `e` (sequence number `oldest`) from the log, every index and key entry of
-- its topics; with `raise`, each of its topics' floors rises to it. Returns its size.
local function drop(oldest, e, raise)
  local f = e[2]
  local seq = tonumber(oldest)
  local z = tonumber(f[12])
  redis.call('XDEL', KEYS[1], oldest .. '-0')
  if f[16] and f[16] ~= '' and redis.call('HGET', KEYS[8], f[16]) == oldest then
    redis.call('HDEL', KEYS[8], f[16])
  end
  removed = removed + z
  local seen = {}
  for other in string.gmatch(f[2], '[^\n]+') do
    if not seen[other] then
      seen[other] = true
      redis.call('ZREM', prefix .. other, oldest)
      if f[20] and f[20] ~= '' then
        local field = other .. '\n' .. f[20]
        if redis.call('HGET', KEYS[9], field) == oldest then redis.call('HDEL', KEYS[9], field) end
        redis.call('ZREM', KEYS[9] .. ':' .. other, oldest)
        if redis.call('ZCARD', KEYS[9] .. ':' .. other) == 0 then
          redis.call('SREM', KEYS[10], other)
        end
      end
      if redis.call('HEXISTS', KEYS[4], other) == 1 then
        redis.call('HINCRBY', KEYS[4], other, -z)
      end
      if raise then
        redis.call('ZADD', KEYS[5], 'GT', seq, other)
        raised[other] = math.max(raised[other] or 0, seq)
      end
    end
  end
  return z
end
local found = scan[2]
for i = 1, #found, 2 do
  local topic, rule = found[i], rules[found[i + 1]]
  local index = prefix .. topic
  local count = redis.call('ZCARD', index)
  if count == 0 then
    redis.call('HDEL', KEYS[3], topic)
    redis.call('HDEL', KEYS[4], topic)
  elseif rule then
    local size = tonumber(redis.call('HGET', KEYS[4], topic) or '0')
    while count > 0 do
      local oldest = redis.call('ZRANGE', index, 0, 0)[1]
      local seq = tonumber(oldest)
      local id = oldest .. '-0'
      local e = redis.call('XRANGE', KEYS[1], id, id)[1]
      if not e then
        -- An index entry without its event (not written by these scripts): drop it.
        redis.call('ZREM', index, oldest)
      else
        local ts = tonumber(e[2][14])
        local over = (rule[1] >= 0 and count > rule[1]) or (rule[2] >= 0 and size > rule[2])
          or (rule[3] >= 0 and now - ts > rule[3])
        if not over or ts > young or seq > horizon then break end
        if budget == 0 then exhausted = true; break end
        budget = budget - 1
        size = size - drop(oldest, e, true)
      end
      count = count - 1
    end
    -- Compaction (keep = latest-per-key, rule[4] the tombstones' grace): from the topic's
    -- compaction cursor (`kcursor`), each keyed event that is not its key's newest goes
    -- without raising a floor, each tombstone past its grace goes and raises it.
    if rule[4] >= 0 and not exhausted then
      local from = redis.call('HGET', KEYS[11], topic) or '0'
      local seqs = redis.call('ZRANGEBYSCORE', index, '(' .. from, '+inf', 'LIMIT', 0, 1000)
      local last = from
      for _, s in ipairs(seqs) do
        if budget == 0 then exhausted = true; break end
        local e = redis.call('XRANGE', KEYS[1], s .. '-0', s .. '-0')[1]
        if e then
          local f = e[2]
          local ts = tonumber(f[14])
          if ts > young or tonumber(s) > horizon then break end
          last = s
          if f[20] and f[20] ~= '' then
            local newest = redis.call('HGET', KEYS[9], topic .. '\n' .. f[20]) == s
            if not newest then
              budget = budget - 1
              drop(s, e, false)
            elseif f[22] == '1' and now - ts > rule[4] then
              budget = budget - 1
              drop(s, e, true)
            end
          end
        else
          last = s
        end
      end
      if #seqs < 1000 and not exhausted and last == (seqs[#seqs] or from) then
        redis.call('HDEL', KEYS[11], topic)
      else
        redis.call('HSET', KEYS[11], topic, last)
      end
    end
    if exhausted then break end
  end
end
if not exhausted then redis.call('SET', KEYS[6], scan[1]) end
if removed > 0 then redis.call('DECRBY', KEYS[2], string.format('%d', removed)) end
local out = {cursor, scan[1], exhausted and 1 or 0}
for topic, seq in pairs(raised) do
  table.insert(out, topic); table.insert(out, seq)
end
return out
";

/// Looking a publisher id up: its event's sequence number, while the event is retained (an
/// entry left behind by a deletion not made by these scripts is no event). KEYS: pubids,
/// log. ARGV: the id. Returns the sequence number, or nil.
pub(crate) const FIND_ID: &str = r"
local s = redis.call('HGET', KEYS[1], ARGV[1])
if not s or #redis.call('XRANGE', KEYS[2], s .. '-0', s .. '-0') == 0 then return false end
return tonumber(s)
";

/// A node's heartbeat: keeps the node's records alive, and removes from `nodes` every node
/// whose records are gone (expired, or none left). KEYS: nodes, the node's hash. ARGV: the
/// node's id, the prefix of the nodes' hashes, the records' time to live (ms). Returns 1, or 0
/// when Redis has no records of the node (the node writes them again if it has some).
pub(crate) const HEARTBEAT: &str = r"
local alive = redis.call('PEXPIRE', KEYS[2], ARGV[3])
if alive == 1 then redis.call('SADD', KEYS[1], ARGV[1]) end
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. node) == 0 then redis.call('SREM', KEYS[1], node) end
end
return alive
";
