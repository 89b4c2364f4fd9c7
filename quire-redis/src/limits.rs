//! Rate-limit buckets shared by every instance: GCRA (the algorithm governor uses in
//! process) in one Lua script, so a check is atomic and one round trip checks every bucket
//! a request passes. Keys expire when their bucket is full again, so Redis holds only the
//! active clients. Callers fall back to their own buckets when this fails.

use std::sync::Arc;
use std::time::Duration;

use crate::connection::Redis;

/// `KEYS[i]`: bucket i; `ARGV[2i-1]`, `ARGV[2i]`: its emission interval (µs per token) and
/// burst. Buckets are checked in order, taking a token from each, until one refuses. Returns
/// for each bucket checked: allowed (1/0), tokens remaining, and microseconds until full
/// (allowed) or until a token is free (refused).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then
    table.insert(out, 0); table.insert(out, 0); table.insert(out, math.ceil(allow_at - now))
    return out
  end
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
  table.insert(out, 1)
  table.insert(out, math.floor((now - allow_at) / interval))
  table.insert(out, math.ceil(new_tat - now))
end
return out
";

/// `KEYS`: counters; `ARGV[1]`: `1` to add one to each; `ARGV[2]`: window in ms. Returns each
/// counter's count and milliseconds left of its window (a window starts at its first count).
const COUNT: &str = r"
local out = {}
for _, key in ipairs(KEYS) do
  local n
  if ARGV[1] == '1' then
    n = redis.call('INCR', key)
    if n == 1 then redis.call('PEXPIRE', key, ARGV[2]) end
  else
    n = tonumber(redis.call('GET', key) or 0)
  end
  local left = redis.call('PTTL', key)
  if left < 0 then left = tonumber(ARGV[2]) end
  table.insert(out, n)
  table.insert(out, left)
end
return out
";

/// One bucket to check: its name (under the deployment's prefix), one token per `interval`,
/// `burst` at once.
pub struct Bucket {
    pub key: String,
    pub interval: Duration,
    pub burst: u32,
}

/// What one bucket answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketAnswer {
    pub allowed: bool,
    pub remaining: u32,
    /// Allowed: until the bucket is full again; refused: until the next token.
    pub wait: Duration,
}

/// Buckets in Redis.
pub struct RedisBuckets {
    redis: Arc<Redis>,
    script: redis::Script,
    count: redis::Script,
}

impl RedisBuckets {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self {
            redis,
            script: redis::Script::new(GCRA),
            count: redis::Script::new(COUNT),
        }
    }

    /// Fixed-window counters `keys` (under the deployment's prefix): each one's count and
    /// the time left of its window, after adding one to each when `add`.
    pub async fn count(
        &self,
        keys: &[String],
        add: bool,
        window: Duration,
    ) -> Result<Vec<(u64, Duration)>, String> {
        let keys: Vec<String> = keys
            .iter()
            .map(|k| self.redis.key(&format!("rl:{k}")))
            .collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let window_ms = window.as_millis().max(1).to_string();
        let add = if add { "1" } else { "0" };
        let flat: Vec<i64> = self
            .redis
            .script(
                &self.count,
                &key_refs,
                &[add.as_bytes(), window_ms.as_bytes()],
                "count",
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(flat
            .chunks_exact(2)
            .map(|c| {
                (
                    u64::try_from(c[0]).unwrap_or(0),
                    Duration::from_millis(u64::try_from(c[1]).unwrap_or(0)),
                )
            })
            .collect())
    }

    /// Checks `buckets` in order (one round trip), stopping at the first refusal; the answers
    /// of the buckets checked. `Err` when Redis cannot answer now.
    pub async fn check(&self, buckets: &[Bucket]) -> Result<Vec<BucketAnswer>, String> {
        let keys: Vec<String> = buckets
            .iter()
            .map(|b| self.redis.key(&format!("rl:{}", b.key)))
            .collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let args: Vec<String> = buckets
            .iter()
            .flat_map(|b| {
                [
                    b.interval.as_micros().max(1).to_string(),
                    b.burst.max(1).to_string(),
                ]
            })
            .collect();
        let arg_refs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let flat: Vec<i64> = self
            .redis
            .script(&self.script, &key_refs, &arg_refs, "rate_limit")
            .await
            .map_err(|e| e.to_string())?;
        Ok(flat
            .chunks_exact(3)
            .map(|c| BucketAnswer {
                allowed: c[0] == 1,
                remaining: u32::try_from(c[1].max(0)).unwrap_or(u32::MAX),
                wait: Duration::from_micros(u64::try_from(c[2].max(0)).unwrap_or(0)),
            })
            .collect())
    }
}
