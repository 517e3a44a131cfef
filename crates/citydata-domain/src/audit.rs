//! 审计 (audit): tamper-evident, hash-chained audit entries.
//!
//! Every entry carries `hash = SHA-256(prev_hash || canonical_bytes(seq, event))`, so editing,
//! deleting, inserting or reordering any entry breaks the chain from that entry on. The store
//! also keeps the chain head (last sequence number and hash), so removing entries from the end is
//! detected too. [`ChainVerifier`] walks entries in sequence order and names the first broken one.
//!
//! A hash chain alone does not stop someone who can write the database: they edit a row and
//! recompute every hash after it. [`AuditCheckpoint`]s close that gap: the node signs (seq, head
//! hash, time) with a key kept outside the database (the signature is computed in
//! `citydata-core`); the verifier, given the checkpoints whose signatures hold, checks that the
//! chain still has each checkpoint's hash at its seq and reaches at least the newest one.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    Success,
    /// Refused by authentication or authorization.
    Denied,
    /// Failed for another reason (bad input, conflict, error).
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failure => "failure",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "denied" => Some(Self::Denied),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }
}

/// An event to append, before it has a place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// When it happened, truncated to microseconds so it round-trips through every store.
    pub at: DateTime<Utc>,
    /// Username of the actor, or the attempted username of a failed login.
    pub actor: Option<String>,
    /// The actor's department.
    pub department: Option<String>,
    /// What was done, dotted: `auth.login`, `department.create`, `token.create`, ...
    pub action: String,
    /// What it was done to: `department:gaj`, `user:wjw-analyst`, `token:<id>`, ...
    pub target: Option<String>,
    pub outcome: Outcome,
    pub request_id: Option<String>,
    pub client: Option<String>,
    /// Further facts (how the actor authenticated, error code, ...). Kept as canonical JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(action: impl Into<String>, outcome: Outcome, now: DateTime<Utc>) -> Self {
        Self {
            at: now.trunc_subsecs(6),
            actor: None,
            department: None,
            action: action.into(),
            target: None,
            outcome,
            request_id: None,
            client: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// The bytes that are hashed: every field, length-prefixed, in a fixed order.
    pub fn canonical_bytes(&self, seq: i64) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, v: Option<&str>) {
            match v {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"citydata-audit-v1");
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&self.at.timestamp_micros().to_be_bytes());
        field(&mut out, self.actor.as_deref());
        field(&mut out, self.department.as_deref());
        field(&mut out, Some(&self.action));
        field(&mut out, self.target.as_deref());
        field(&mut out, Some(self.outcome.as_str()));
        field(&mut out, self.request_id.as_deref());
        field(&mut out, self.client.as_deref());
        field(&mut out, Some(&canonical_json(&self.details)));
        out
    }
}

/// JSON text with object keys sorted (serde_json's map is ordered by key), no whitespace.
pub fn canonical_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `SHA-256(prev_hash || canonical bytes)`, lower-case hex.
pub fn chain_hash(prev_hash: &str, seq: i64, event: &AuditEvent) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(event.canonical_bytes(seq));
    hex::encode(h.finalize())
}

/// An entry in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// Place `event` after an entry with (`prev_seq`, `prev_hash`), or first when `None`.
    pub fn chain(prev: Option<(i64, &str)>, event: AuditEvent) -> Self {
        let (seq, prev_hash) = match prev {
            Some((s, h)) => (s + 1, h.to_string()),
            None => (1, GENESIS_HASH.to_string()),
        };
        let hash = chain_hash(&prev_hash, seq, &event);
        Self { seq, event, prev_hash, hash }
    }
}

/// A signed statement "the chain had `hash` at `seq` at time `at`". `mac` is the hex
/// HMAC-SHA256 of [`AuditCheckpoint::message`] under the node's audit key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub mac: String,
}

impl AuditCheckpoint {
    /// The bytes the MAC covers.
    pub fn message(seq: i64, hash: &str, at: DateTime<Utc>) -> Vec<u8> {
        format!("citydata-audit-checkpoint-v1\n{seq}\n{hash}\n{}", at.timestamp_micros()).into_bytes()
    }
}

/// What is wrong at the first broken entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BreakKind {
    /// The entry's content no longer matches its hash: it was edited.
    Edited,
    /// The entry does not follow the previous one: something was deleted, inserted or reordered.
    Unlinked,
    /// A sequence number is missing: an entry was deleted.
    Missing,
    /// The chain ends before the recorded head: entries were removed from the end,
    /// or the head does not match the last entry.
    Truncated,
    /// The chain is consistent but disagrees with a signed checkpoint: entries between the
    /// previous good checkpoint and this one were rewritten and re-hashed (`seq` is the first
    /// entry that is no longer vouched for).
    Rewritten,
    /// A checkpoint's signature does not hold: it was forged or the key changed.
    Forged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainBreak {
    /// The sequence number of the first broken entry.
    pub seq: i64,
    pub kind: BreakKind,
    pub message: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit entry #{}: {}", self.seq, self.message)
    }
}

/// Walks entries in ascending `seq` order (as stored), checking each link.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    last: Option<(i64, String)>,
    count: u64,
    /// Signed (seq, hash) pairs, ascending; their signatures were checked by the caller.
    checkpoints: std::collections::BTreeMap<i64, String>,
    /// The newest checkpoint the chain agreed with.
    vouched: i64,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also check the chain against these checkpoints (whose signatures the caller verified).
    pub fn with_checkpoints<'a>(mut self, checkpoints: impl IntoIterator<Item = &'a AuditCheckpoint>) -> Self {
        for c in checkpoints {
            self.checkpoints.insert(c.seq, c.hash.clone());
        }
        self
    }

    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ChainBreak> {
        let (expected_seq, expected_prev) = match &self.last {
            None => (1, GENESIS_HASH.to_string()),
            Some((s, h)) => (s + 1, h.clone()),
        };
        let recomputed = chain_hash(&e.prev_hash, e.seq, &e.event);
        if recomputed != e.hash {
            return Err(ChainBreak {
                seq: e.seq,
                kind: BreakKind::Edited,
                message: "内容与哈希不符，记录被修改 / content does not match its hash: the entry was edited".into(),
            });
        }
        if e.prev_hash != expected_prev {
            return Err(ChainBreak {
                seq: e.seq,
                kind: BreakKind::Unlinked,
                message: format!(
                    "与前一条记录不衔接（应接在 #{} 之后）：记录被删除、插入或重排 / does not follow entry #{}: entries were deleted, inserted or reordered",
                    expected_seq - 1,
                    expected_seq - 1
                ),
            });
        }
        if e.seq != expected_seq {
            return Err(ChainBreak {
                seq: e.seq,
                kind: BreakKind::Missing,
                message: format!(
                    "序号应为 #{expected_seq}：记录被删除或重排 / expected entry #{expected_seq}: entries were deleted or reordered"
                ),
            });
        }
        if let Some(signed) = self.checkpoints.get(&e.seq) {
            if *signed != e.hash {
                let first = self.vouched + 1;
                return Err(ChainBreak {
                    seq: first,
                    kind: BreakKind::Rewritten,
                    message: format!(
                        "#{first}–#{} 之间的记录被改写并重算了哈希（与签名检查点 #{} 不符）/ entries #{first}–#{} were rewritten and re-hashed: they disagree with signed checkpoint #{}",
                        e.seq, e.seq, e.seq, e.seq
                    ),
                });
            }
            self.vouched = e.seq;
        }
        self.last = Some((e.seq, e.hash.clone()));
        self.count += 1;
        Ok(())
    }

    /// Check the end of the chain against the recorded head; returns the number of entries.
    pub fn finish(self, head: Option<(i64, &str)>) -> Result<u64, ChainBreak> {
        let last_seq = self.last.as_ref().map(|(s, _)| *s).unwrap_or(0);
        if let Some((&signed, _)) = self.checkpoints.range(last_seq + 1..).next() {
            return Err(ChainBreak {
                seq: last_seq + 1,
                kind: BreakKind::Truncated,
                message: format!(
                    "签名检查点 #{signed} 之前的记录被删除（链只到 #{last_seq}）/ entries up to signed checkpoint #{signed} were removed: the chain ends at #{last_seq}"
                ),
            });
        }
        match (head, &self.last) {
            (None, None) => Ok(0),
            (Some((hs, hh)), Some((ls, lh))) if hs == *ls && hh == lh => Ok(self.count),
            (head, last) => {
                let seq = head.map(|(s, _)| s).unwrap_or(0).max(last.as_ref().map(|(s, _)| *s).unwrap_or(0));
                Err(ChainBreak {
                    seq,
                    kind: BreakKind::Truncated,
                    message: format!(
                        "链尾与记录的链头不符（链头 #{}，最后一条 #{}）：末尾记录被删除或链头被改 / chain end does not match the recorded head (head #{}, last entry #{})",
                        head.map(|(s, _)| s).unwrap_or(0),
                        last.as_ref().map(|(s, _)| *s).unwrap_or(0),
                        head.map(|(s, _)| s).unwrap_or(0),
                        last.as_ref().map(|(s, _)| *s).unwrap_or(0),
                    ),
                })
            }
        }
    }
}

/// Filters for listing audit entries; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub department: Option<String>,
    /// An action, or a prefix ending in `.` (`auth.` matches `auth.login`, `auth.logout`).
    pub action: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<Outcome>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let mut ev = AuditEvent::new(
                "token.create",
                Outcome::Success,
                Utc.timestamp_opt(1_700_000_000 + i, 123_456_789).unwrap(),
            );
            ev.actor = Some(format!("user{i}"));
            ev.details = serde_json::json!({"b": 1, "a": "x"});
            let prev = out.last().map(|e| (e.seq, e.hash.as_str()));
            out.push(AuditEntry::chain(prev, ev));
        }
        out
    }

    fn verify(entries: &[AuditEntry], head: Option<(i64, &str)>) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::new();
        for e in entries {
            v.push(e)?;
        }
        v.finish(head)
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let head = c.last().map(|e| (e.seq, e.hash.as_str()));
        assert_eq!(verify(&c, head).unwrap(), 5);
        assert_eq!(verify(&[], None).unwrap(), 0);
        assert_eq!(c[0].prev_hash, GENESIS_HASH);
        // Microsecond truncation keeps the time representable everywhere.
        assert_eq!(c[0].event.at.timestamp_subsec_nanos(), 123_456_000);
    }

    #[test]
    fn detects_each_kind_of_tampering() {
        let c = chain(5);
        let head = (c[4].seq, c[4].hash.clone());
        let head = Some((head.0, head.1.as_str()));

        let mut edited = c.clone();
        edited[2].event.actor = Some("mallory".into());
        assert_eq!(
            verify(&edited, head).unwrap_err(),
            ChainBreak { seq: 3, kind: BreakKind::Edited, message: verify(&edited, head).unwrap_err().message }
        );

        let mut deleted = c.clone();
        deleted.remove(1);
        let e = verify(&deleted, head).unwrap_err();
        assert_eq!((e.seq, e.kind), (3, BreakKind::Unlinked));

        let mut reordered = c.clone();
        reordered.swap(1, 2);
        let e = verify(&reordered, head).unwrap_err();
        assert_eq!(e.seq, 3);

        let mut inserted = c.clone();
        let forged = AuditEntry::chain(Some((c[1].seq, &c[1].hash)), c[1].event.clone());
        inserted.insert(2, forged);
        let e = verify(&inserted, head).unwrap_err();
        assert_eq!((e.seq, e.kind), (3, BreakKind::Unlinked));

        let truncated = &c[..4];
        let e = verify(truncated, head).unwrap_err();
        assert_eq!((e.seq, e.kind), (5, BreakKind::Truncated));
    }

    #[test]
    fn details_key_order_does_not_matter() {
        let mut a = AuditEvent::new("x", Outcome::Success, Utc::now());
        let mut b = a.clone();
        a.details = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        b.details = serde_json::from_str(r#"{"b":2, "a":1}"#).unwrap();
        assert_eq!(chain_hash(GENESIS_HASH, 1, &a), chain_hash(GENESIS_HASH, 1, &b));
    }
}
