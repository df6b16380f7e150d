//! What the load generator asks and what it must hear back: a
//! deterministic request plan per connection and the per-connection model
//! that checks every reply.
//!
//! Invariants: each key is used by exactly one connection of a run, so a
//! connection's replies depend only on its own requests (and, for `ERR
//! full`, on whether the store had room); a connection's first request on
//! each of its keys is a `SET`, so values left by an earlier run never
//! decide an answer; the plan is a pure function of (seed, connection,
//! index).

use std::collections::HashMap;

/// The shape of one run's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub connections: usize,
    /// Distinct keys in the run (at least one per connection).
    pub keys: usize,
    /// Bytes in every value (1..=256).
    pub value_len: usize,
    pub seed: u64,
}

/// One planned request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    Set { key: String, value: String },
    Get { key: String },
}

impl Planned {
    /// The request line as sent.
    pub fn line(&self) -> String {
        match self {
            Planned::Set { key, value } => format!("SET {key} {value}\n"),
            Planned::Get { key } => format!("GET {key}\n"),
        }
    }
}

/// SplitMix64: a well-mixed 64-bit function of the request's coordinates.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Workload {
    /// The keys connection `conn` owns: key numbers `conn`, `conn + C`, …
    pub fn keys_of(&self, conn: usize) -> Vec<String> {
        let total = self.keys.max(self.connections);
        (conn..total).step_by(self.connections.max(1)).map(|n| format!("load-k{n}")).collect()
    }

    /// Request `index` of connection `conn`.
    pub fn request(&self, conn: usize, index: usize) -> Planned {
        let keys = self.keys_of(conn);
        if index < keys.len() {
            return Planned::Set { key: keys[index].clone(), value: self.value(conn, index) };
        }
        let roll = mix(self.seed ^ mix(conn as u64) ^ mix(index as u64).rotate_left(17));
        let key = keys[(roll % keys.len() as u64) as usize].clone();
        if roll >> 63 == 0 { Planned::Get { key } } else { Planned::Set { key, value: self.value(conn, index) } }
    }

    fn value(&self, conn: usize, index: usize) -> String {
        let mut value = format!("v{conn}.{index}.");
        let mut filler = mix(self.seed ^ (conn as u64) << 32 ^ index as u64);
        while value.len() < self.value_len.clamp(1, 256) {
            value.push((b'a' + (filler % 26) as u8) as char);
            filler = mix(filler);
        }
        value.truncate(self.value_len.clamp(1, 256));
        value
    }
}

/// How a reply compares with what the model expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    /// `ERR full` for a new key: correct, the store had no room.
    Full,
    Wrong(String),
}

/// One connection's view of its own keys.
#[derive(Debug, Default)]
pub struct Model {
    stored: HashMap<String, String>,
}

impl Model {
    /// Checks `reply` (without its newline) to `request` and learns from it.
    pub fn check(&mut self, request: &Planned, reply: &str) -> Verdict {
        match request {
            Planned::Set { key, value } => {
                if reply == "OK" {
                    self.stored.insert(key.clone(), value.clone());
                    Verdict::Correct
                } else if reply == "ERR full" && !self.stored.contains_key(key) {
                    Verdict::Full
                } else {
                    Verdict::Wrong(format!("SET {key}: expected OK, got {reply:?}"))
                }
            }
            Planned::Get { key } => {
                let expected = match self.stored.get(key) {
                    Some(value) => format!("VALUE {value}"),
                    None => "NOT_FOUND".to_string(),
                };
                if reply == expected {
                    Verdict::Correct
                } else {
                    Verdict::Wrong(format!("GET {key}: expected {expected:?}, got {reply:?}"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_split_between_connections_and_set_first() {
        let w = Workload { connections: 8, keys: 64, value_len: 32, seed: 1 };
        let mut all: Vec<String> = (0..8).flat_map(|c| w.keys_of(c)).collect();
        assert_eq!(all.len(), 64);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 64);
        for (i, key) in w.keys_of(3).iter().enumerate() {
            assert!(matches!(w.request(3, i), Planned::Set { key: k, .. } if &k == key));
        }
        let wide = Workload { connections: 64, keys: 16, value_len: 8, seed: 1 };
        assert_eq!(wide.keys_of(63), ["load-k63"]);
    }

    #[test]
    fn the_plan_is_deterministic_and_mixes_gets_and_sets() {
        let w = Workload { connections: 1, keys: 4, value_len: 40, seed: 7 };
        let plan: Vec<Planned> = (0..200).map(|i| w.request(0, i)).collect();
        assert_eq!(plan, (0..200).map(|i| w.request(0, i)).collect::<Vec<_>>());
        let gets = plan.iter().filter(|p| matches!(p, Planned::Get { .. })).count();
        assert!((60..140).contains(&gets), "{gets} gets of 200");
        for p in &plan {
            if let Planned::Set { value, .. } = p {
                assert_eq!(value.len(), 40);
            }
            assert!(kv_logic::Request::parse(p.line().trim_end().as_bytes()).is_ok());
        }
    }

    #[test]
    fn the_model_checks_replies() {
        let mut model = Model::default();
        let set = Planned::Set { key: "a".into(), value: "1".into() };
        let get = Planned::Get { key: "a".into() };
        assert_eq!(model.check(&get, "NOT_FOUND"), Verdict::Correct);
        assert_eq!(model.check(&set, "ERR full"), Verdict::Full);
        assert_eq!(model.check(&get, "NOT_FOUND"), Verdict::Correct);
        assert_eq!(model.check(&set, "OK"), Verdict::Correct);
        assert_eq!(model.check(&get, "VALUE 1"), Verdict::Correct);
        assert!(matches!(model.check(&get, "VALUE 2"), Verdict::Wrong(_)));
        assert!(matches!(model.check(&set, "ERR full"), Verdict::Wrong(_)), "an update is never refused");
    }
}
