//! Redis Stream ids (`<milliseconds>-<sequence>`) and the replies of `XREAD`.

use redis::Value;

/// A stream entry id; ordered as Redis orders them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// One number per id, increasing with the id: what clients see as an event id. It stays
    /// below 2^53 (until the year 2248), so JavaScript reads the JSON `id` exactly: the
    /// sequence takes the low 10 bits, and a stream that appends more than 1,024 entries in
    /// one millisecond (far past quire's write rate) would give the later ones a repeated id.
    pub fn as_u64(self) -> u64 {
        (self.ms << 10) | self.seq.min((1 << 10) - 1)
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry: its id and its fields.
pub struct Entry {
    pub id: StreamId,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

fn bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn items(value: &Value) -> Option<Vec<&Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items.iter().collect()),
        Value::Map(pairs) => Some(pairs.iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

/// The entries of an `XREAD` reply for one stream (nil when the block timed out).
pub fn xread_entries(reply: &Value) -> Vec<Entry> {
    let Some(streams) = items(reply) else {
        return Vec::new();
    };
    // RESP2: [[name, entries]]; RESP3: {name: entries}.
    let entries = match streams.as_slice() {
        [one] => items(one).and_then(|pair| pair.get(1).copied()),
        [_, entries] => Some(*entries),
        _ => None,
    };
    let Some(entries) = entries.and_then(items) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let parts = items(entry)?;
            let id = StreamId::parse(std::str::from_utf8(&bytes(parts.first()?)?).ok()?)?;
            let flat = items(parts.get(1)?)?;
            let fields = flat
                .chunks(2)
                .filter_map(|kv| Some((bytes(kv.first()?)?, bytes(kv.get(1)?)?)))
                .collect();
            Some(Entry { id, fields })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_and_number_like_redis() {
        let a = StreamId::parse("1700000000000-0").unwrap();
        let b = StreamId::parse("1700000000000-7").unwrap();
        let c = StreamId::parse("1700000000001-0").unwrap();
        assert!(a < b && b < c);
        assert!(a.as_u64() < b.as_u64() && b.as_u64() < c.as_u64());
        assert_eq!(b.as_u64(), (1_700_000_000_000 << 10) | 7);
        // Exact as a JavaScript number for centuries.
        let year_2200_ms = 7_258_118_400_000_u64;
        assert!(
            StreamId {
                ms: year_2200_ms,
                seq: 1023
            }
            .as_u64()
                < 1 << 53
        );
        assert_eq!(b.to_string(), "1700000000000-7");
        assert!(StreamId::parse("nonsense").is_none());
    }

    #[test]
    fn xread_replies_are_read_in_resp2_form() {
        let entry = |id: &str, value: &str| {
            Value::Array(vec![
                Value::BulkString(id.into()),
                Value::Array(vec![
                    Value::BulkString(b"i".to_vec()),
                    Value::BulkString(value.into()),
                ]),
            ])
        };
        let reply = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"stream".to_vec()),
            Value::Array(vec![entry("5-0", "a"), entry("5-1", "b")]),
        ])]);
        let entries = xread_entries(&reply);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].id, StreamId { ms: 5, seq: 1 });
        assert_eq!(entries[1].field("i"), Some(&b"b"[..]));
        assert!(xread_entries(&Value::Nil).is_empty());
    }
}
