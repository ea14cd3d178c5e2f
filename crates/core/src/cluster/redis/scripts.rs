//! The Lua scripts that keep the shared state consistent. Each touches the keys of one
//! session or one broker only (one hash slot), so they also run on a Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

/// Registers a session unless its id is taken. KEYS: session. ARGV: id, owner JSON, owner
/// key, createdAt, expiresAt (ms), broker, encrypted (0/1). Returns 1 when registered (also
/// when this very registration was already applied: the same broker and createdAt), else 0.
pub static REGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  local held = redis.call('HMGET', KEYS[1], 'broker', 'createdAt')
  if held[1] == ARGV[6] and held[2] == ARGV[4] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'owner', ARGV[2], 'ownerKey', ARGV[3], 'state', 'starting',
  'createdAt', ARGV[4], 'expiresAt', ARGV[5], 'broker', ARGV[6], 'lastSeq', '0', 'toolCallCount', '0',
  'encrypted', ARGV[7], 'ended', '0')
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return 1
",
    )
});

/// Appends a batch of consecutive events to a session's log, if the session is still this
/// broker's. KEYS: session, events. ARGV: broker, first seq, last seq, expiresAt, state,
/// tool call count, ended (0/1), then `<seq>:<type>`/line pairs. Returns 1 when written,
/// 0 when it already was (a retry), -1 when the session is not this broker's (taken over,
/// deleted or expired), -2 when the batch does not follow the log.
pub static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('HMGET', KEYS[1], 'broker', 'lastSeq')
if held[1] ~= ARGV[1] then return -1 end
local last = tonumber(held[2])
if last >= tonumber(ARGV[3]) then return 0 end
if last + 1 ~= tonumber(ARGV[2]) then return -2 end
redis.call('XADD', KEYS[2], ARGV[3] .. '-0', unpack(ARGV, 8))
redis.call('HSET', KEYS[1], 'lastSeq', ARGV[3], 'state', ARGV[5], 'toolCallCount', ARGV[6], 'ended', ARGV[7])
redis.call('PEXPIREAT', KEYS[2], ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1
",
    )
});

/// Ends a lost broker's session with the two events given (its `error` and `final`). KEYS:
/// session, events. ARGV: lost broker, the last seq they follow, the finishing broker,
/// expiresAt, then the events' `<seq>:<type>`/line pairs. Returns 1 when written, 0 when
/// there is nothing to do (ended, or not the lost broker's), -1 when the log moved on
/// meanwhile (read it again).
pub static FINISH_LOST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('HMGET', KEYS[1], 'broker', 'lastSeq', 'ended')
if held[1] ~= ARGV[1] or held[3] == '1' then return 0 end
if tonumber(held[2]) ~= tonumber(ARGV[2]) then return -1 end
local seq = tonumber(ARGV[2]) + 2
redis.call('XADD', KEYS[2], seq .. '-0', unpack(ARGV, 5))
redis.call('HSET', KEYS[1], 'lastSeq', seq, 'state', 'failed', 'broker', ARGV[3], 'ended', '1')
redis.call('PEXPIREAT', KEYS[2], ARGV[4])
redis.call('PUBLISH', KEYS[2], seq)
return 1
",
    )
});

/// Renews a broker's lease unless another broker has finished its sessions meanwhile.
/// KEYS: lease, lost. ARGV: broker, lease ms. Returns 1, or 0 when the broker was lost.
pub static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
",
    )
});

/// Counts a hit in a fixed window. KEYS: counter. ARGV: window ms. Returns {hits, ms left}.
pub static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if hits == 1 or left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {hits, left}
",
    )
});

/// Every script, for `SCRIPT LOAD` after Redis lost its script cache (a restart).
pub fn all() -> [&'static Script; 5] {
    [&REGISTER, &APPEND, &FINISH_LOST, &RENEW, &COUNT]
}

/// `EVALSHA` of `script` with `keys`, for a pipeline (arguments follow with `.arg`).
pub fn evalsha(script: &Script, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}
