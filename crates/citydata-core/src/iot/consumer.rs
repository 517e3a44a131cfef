//! The MQTT consumer of one stream.
//!
//! One task polls the broker (`rumqttc`, persistent session, manual acknowledgements) and hands
//! each message to the batcher through a bounded channel: when the writer falls behind, polling
//! stops and the broker holds the rest (back-pressure). The batcher closes a micro-batch after
//! `batch_secs` or `batch_max` messages, decodes each message by its device's type, quarantines
//! what cannot become a row (oversize, not JSON, unknown device, another department's device,
//! a disabled device, no timestamp …) with its topic, device and reason, drops duplicates
//! (same device and time, or payload id) seen within `dedup_secs`, and commits the rows through
//! the upload pipeline (`Core::ingest_data`: the resource's validation, quality rules, key
//! uniqueness against the table, quarantine, audit, webhooks) — one Delta commit per batch.
//! Only then are the batch's QoS 1 messages acknowledged: a crash before the commit leaves
//! them unacknowledged and the broker delivers them again; a crash after the commit and before
//! the acknowledgements redelivers rows whose keys the table already holds, which the key check
//! quarantines as duplicates instead of writing them twice.
//!
//! MQTT 3.1.1 and 5 are spoken (`mqtt_version`); an MQTT 5 session is given a day's expiry so
//! that it, too, outlives the connection. `mqtts` brokers are checked against the system's
//! roots and the stream's own CA certificates (`ca_pem`), with rustls.
//!
//! After a broker restart the poller reconnects with exponential backoff (0.2 s to 10 s) and
//! subscribes again on every CONNACK. One node consumes a stream at a time: the consumer holds
//! the stream's lease and stops when it cannot renew it.

use super::streams::broker_address;
use crate::ingest::{IngestBody, IngestParams};
use crate::{Core, CoreError, RequestMeta};
use chrono::Utc;
use citydata_domain::iot::{Decoded, PayloadInput, PayloadSchema};
use citydata_domain::principal::{AuthMethod, Principal};
use citydata_domain::user::{Membership, Role, Username};
use citydata_lake::convert::{Failure, InvalidRow};
use citydata_store::{DeviceRecord, DeviceSeen, StreamRecord};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// This node's counters of a stream since it took it.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamStats {
    /// Messages received from the broker (redeliveries included).
    pub received: u64,
    /// Rows committed to the table.
    pub committed: u64,
    /// Messages quarantined (before or by validation).
    pub quarantined: u64,
    /// Duplicates dropped within the window.
    pub duplicates: u64,
    /// Micro-batches committed.
    pub batches: u64,
    /// Duration of the newest batch (decode, commit, acknowledgements), milliseconds.
    pub last_batch_ms: u64,
    /// Messages received and not yet committed (the lag).
    pub pending: u64,
    pub connected: bool,
    /// Subscriptions acknowledged by the broker (one per topic filter per connection).
    pub subscriptions: u64,
    /// Connection failures (each followed by a reconnect).
    pub connection_errors: u64,
}

fn stats_map() -> &'static Mutex<HashMap<Uuid, StreamStats>> {
    static M: OnceLock<Mutex<HashMap<Uuid, StreamStats>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

fn with_stats(id: Uuid, f: impl FnOnce(&mut StreamStats)) {
    let mut m = stats_map().lock().unwrap_or_else(|p| p.into_inner());
    f(m.entry(id).or_default());
}

/// This node's counters of a stream, when it consumes it.
pub fn stats_of(id: Uuid) -> Option<StreamStats> {
    stats_map().lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
}

/// Where the consumer stands, for tests that stop it at a chosen point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A message arrived; `pending` are held uncommitted.
    Received { pending: usize },
    /// A batch was committed and its messages are not yet acknowledged.
    Committed { rows: u64 },
}

/// Called at each [`Probe`]; answering `true` stops the consumer there, as a crash would
/// (the connection is dropped, nothing more is acknowledged).
pub type StreamProbe = Arc<dyn Fn(Probe) -> bool + Send + Sync>;

/// The principal a stream writes as: a steward of its department, named after the stream.
fn stream_principal(s: &StreamRecord) -> Result<Principal, CoreError> {
    let dept = citydata_domain::dept::DeptCode::parse(&s.department).map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(Principal {
        user_id: Uuid::nil(),
        username: Username::parse("iot-stream").map_err(|e| CoreError::Internal(e.to_string()))?,
        display_name: format!("数据流 {} / stream", s.name),
        memberships: vec![Membership { department: dept, role: Role::Steward }],
        via: AuthMethod::Cli,
    })
}

/// A received message, in either protocol version.
enum Message {
    V4(Publish),
    V5(rumqttc::v5::mqttbytes::v5::Publish),
}

impl Message {
    fn topic(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Message::V4(p) => std::borrow::Cow::Borrowed(p.topic.as_str()),
            Message::V5(p) => String::from_utf8_lossy(&p.topic),
        }
    }
    fn payload(&self) -> &[u8] {
        match self {
            Message::V4(p) => &p.payload,
            Message::V5(p) => &p.payload,
        }
    }
    /// QoS 1: the broker keeps it until it is acknowledged.
    fn needs_ack(&self) -> bool {
        match self {
            Message::V4(p) => p.qos != QoS::AtMostOnce,
            Message::V5(p) => p.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        }
    }
}

/// The client of either protocol version.
#[derive(Clone)]
enum Client {
    V4(AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

impl Client {
    /// Queue the acknowledgement without waiting; `Err` when the queue is full (or closed).
    fn try_ack(&self, m: &Message) -> Result<(), ()> {
        match (self, m) {
            (Client::V4(c), Message::V4(p)) => c.try_ack(p).map_err(drop),
            (Client::V5(c), Message::V5(p)) => c.try_ack(p).map_err(drop),
            _ => Ok(()),
        }
    }
    fn try_subscribe(&self, topic: String, at_least_once: bool) -> Result<(), String> {
        match self {
            Client::V4(c) => c
                .try_subscribe(topic, if at_least_once { QoS::AtLeastOnce } else { QoS::AtMostOnce })
                .map_err(|e| e.to_string()),
            Client::V5(c) => {
                use rumqttc::v5::mqttbytes::QoS as Q5;
                c.try_subscribe(topic, if at_least_once { Q5::AtLeastOnce } else { Q5::AtMostOnce })
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// What the event loop reported (short-lived: a message is moved on at once).
#[allow(clippy::large_enum_variant)]
enum Polled {
    Message(Message),
    Connected,
    Subscribed,
    Other,
}

enum Loop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

impl Loop {
    async fn next(&mut self) -> Result<Polled, String> {
        match self {
            Loop::V4(el) => match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => Ok(Polled::Message(Message::V4(p))),
                Ok(Event::Incoming(Packet::ConnAck(_))) => Ok(Polled::Connected),
                Ok(Event::Incoming(Packet::SubAck(_))) => Ok(Polled::Subscribed),
                Ok(_) => Ok(Polled::Other),
                Err(e) => Err(e.to_string()),
            },
            Loop::V5(el) => {
                use rumqttc::v5::{Event as E5, Incoming as I5};
                match el.poll().await {
                    Ok(E5::Incoming(I5::Publish(p))) => Ok(Polled::Message(Message::V5(p))),
                    Ok(E5::Incoming(I5::ConnAck(_))) => Ok(Polled::Connected),
                    Ok(E5::Incoming(I5::SubAck(_))) => Ok(Polled::Subscribed),
                    Ok(_) => Ok(Polled::Other),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}

/// The TLS settings of an `mqtts` broker: the system's roots and the stream's own CA
/// certificates, with an explicit crypto provider (the process installs no default one).
fn tls(s: &StreamRecord) -> Result<rumqttc::Transport, CoreError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(pem) = &s.ca_pem {
        let certs = super::streams::ca_certificates(pem).map_err(CoreError::Internal)?;
        roots.add_parsable_certificates(certs);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| CoreError::Internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::new(config))))
}

/// The client and its event loop. `addr`: the broker's checked address, used instead of its
/// name for plain MQTT so that a later DNS answer cannot point the reconnecting client
/// elsewhere (TLS keeps the name, which the certificate must match).
fn connect(s: &StreamRecord, addr: Option<std::net::IpAddr>) -> Result<(Client, Loop), CoreError> {
    let (host, port, tls_on) =
        broker_address(&s.broker_url).ok_or_else(|| CoreError::Internal("stream broker_url".into()))?;
    let host = match addr {
        Some(ip) if !tls_on => ip.to_string(),
        _ => host,
    };
    let id = format!("citydata-{}", s.id.simple());
    let cap = s.batch_max as usize * 2 + 64;
    let transport = if tls_on { Some(tls(s)?) } else { None };
    if s.mqtt_version == 5 {
        let mut o = rumqttc::v5::MqttOptions::new(id, host, port);
        o.set_keep_alive(Duration::from_secs(10))
            .set_clean_start(false)
            // MQTT 5 ends a session at the disconnect unless it is given an expiry: keep it a
            // day, so that messages not yet acknowledged wait for the next consumer.
            .set_session_expiry_interval(Some(86_400))
            .set_manual_acks(true)
            .set_max_packet_size(Some(16 * 1024 * 1024))
            .set_request_channel_capacity(cap);
        if let Some(u) = &s.username {
            o.set_credentials(u.clone(), s.password.clone().unwrap_or_default());
        }
        if let Some(t) = transport {
            o.set_transport(t);
        }
        let (c, el) = rumqttc::v5::AsyncClient::new(o, cap);
        return Ok((Client::V5(c), Loop::V5(Box::new(el))));
    }
    let mut o = MqttOptions::new(id, host, port);
    o.set_keep_alive(Duration::from_secs(10))
        .set_clean_session(false)
        .set_manual_acks(true)
        // Oversize messages are quarantined by us; the client must not drop the connection.
        .set_max_packet_size(16 * 1024 * 1024, 64 * 1024)
        .set_request_channel_capacity(cap);
    if let Some(u) = &s.username {
        o.set_credentials(u.clone(), s.password.clone().unwrap_or_default());
    }
    if let Some(t) = transport {
        o.set_transport(t);
    }
    let (c, el) = AsyncClient::new(o, cap);
    Ok((Client::V4(c), Loop::V4(Box::new(el))))
}

/// Aborts the poller when the consumer ends.
struct Poller(tokio::task::JoinHandle<()>);

impl Drop for Poller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn spawn_poller(
    id: Uuid,
    client: Client,
    mut el: Loop,
    topics: Vec<String>,
    at_least_once: bool,
    tx: tokio::sync::mpsc::Sender<Message>,
) -> Poller {
    Poller(tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            match el.next().await {
                Ok(Polled::Message(p)) => {
                    if tx.send(p).await.is_err() {
                        return;
                    }
                }
                Ok(Polled::Connected) => {
                    backoff = Duration::from_millis(200);
                    with_stats(id, |s| s.connected = true);
                    // Subscribe on every connection: a restarted broker has forgotten us.
                    for t in &topics {
                        if let Err(e) = client.try_subscribe(t.clone(), at_least_once) {
                            tracing::warn!(stream = %id, error = %e, "subscribing failed");
                        }
                    }
                }
                Ok(Polled::Subscribed) => with_stats(id, |s| s.subscriptions += 1),
                Ok(Polled::Other) => {}
                Err(e) => {
                    with_stats(id, |s| {
                        s.connected = false;
                        s.connection_errors += 1;
                    });
                    tracing::warn!(stream = %id, error = %e, "MQTT connection failed; reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }))
}

/// At most this many message keys are remembered (about 10 MB): at 20,000 messages a second a one-hour
/// window would hold 72 million. Beyond it the oldest go first, so under heavy load the window
/// is shorter than `dedup_secs`; a redelivered message whose row is in the table is still
/// caught by the table's key check.
const WINDOW_MAX: usize = 200_000;

/// A stream's table is compacted after this many batches (two minutes at 1-second batches).
const COMPACT_EVERY_BATCHES: u32 = 120;

/// Message keys seen within the window, as 128-bit digests (16 bytes each, whatever the key).
struct Window {
    span: Duration,
    keys: HashSet<u128>,
    order: VecDeque<(Instant, u128)>,
}

fn digest(k: &str) -> u128 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(k.as_bytes());
    u128::from_le_bytes(d[..16].try_into().unwrap_or_default())
}

impl Window {
    fn contains(&mut self, k: &str) -> bool {
        let now = Instant::now();
        while let Some((t, _)) = self.order.front() {
            if now.duration_since(*t) <= self.span && self.order.len() <= WINDOW_MAX {
                break;
            }
            if let Some((_, k)) = self.order.pop_front() {
                self.keys.remove(&k);
            }
        }
        self.keys.contains(&digest(k))
    }
    fn insert(&mut self, k: &str) {
        let d = digest(k);
        if !self.span.is_zero() && self.keys.insert(d) {
            self.order.push_back((Instant::now(), d));
        }
    }
}

/// What one batch came to.
struct Outcome {
    committed: u64,
    quarantined: u64,
    duplicates: u64,
    keys: Vec<String>,
}

fn quarantine_row(
    line: u64,
    topic: &str,
    device: Option<&str>,
    rule: &str,
    message: String,
    payload: &[u8],
) -> InvalidRow {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(4096)]).to_string();
    let mut record = BTreeMap::new();
    record.insert("topic".to_string(), Some(topic.to_string()));
    record.insert("device".to_string(), device.map(str::to_string));
    record.insert("payload".to_string(), Some(text));
    InvalidRow {
        line,
        failures: vec![Failure { line, item: None, title: None, rule: rule.into(), message, value: None }],
        record,
    }
}

/// The device ids a message may name: each device type's id path (or the topic's last
/// level), in order, without repeats; the topic's last level when no type names one.
fn candidates(types: &HashMap<Uuid, PayloadSchema>, topic: &str, json: &serde_json::Value) -> Vec<String> {
    let last = || topic.rsplit('/').next().filter(|x| !x.is_empty()).map(str::to_string);
    let mut out: Vec<String> = Vec::new();
    for schema in types.values() {
        let id = match &schema.device_path {
            Some(path) => path.iter().try_fold(json, |v, k| v.get(k)).and_then(|v| match v {
                serde_json::Value::String(x) => Some(x.clone()),
                serde_json::Value::Number(x) => Some(x.to_string()),
                _ => None,
            }),
            None => last(),
        };
        if let Some(id) = id
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    if out.is_empty() {
        out.extend(last());
    }
    out
}

impl Core {
    /// Consume a stream until it is disabled, its lease goes to another node, or `probe` stops
    /// it. Errors end the consumer (the supervisor starts it again).
    pub async fn run_stream(&self, id: Uuid, probe: Option<StreamProbe>) -> Result<(), CoreError> {
        let lease = self.config.ingest_lease;
        let node = self.config.node_id.clone();
        let lease_until = |now: chrono::DateTime<Utc>| now + chrono::Duration::from_std(lease).unwrap_or_default();
        let now = Utc::now();
        if !self.store.claim_stream(id, &node, lease_until(now), now).await? {
            return Ok(());
        }
        let s = self.store.get_stream(id).await?.ok_or_else(|| CoreError::NotFound(format!("stream {id}")))?;
        let principal = stream_principal(&s)?;
        // A name is checked again at each start (literals were checked when they were set).
        let addr = match broker_address(&s.broker_url) {
            Some((host, port, _)) if host.parse::<std::net::IpAddr>().is_err() => {
                let ok = crate::net::resolve_allowed(&host, port, &self.config.webhook_allow)
                    .await
                    .map_err(|m| CoreError::Conflict(format!("数据流 {id}：{m}")))?;
                ok.first().copied()
            }
            _ => None,
        };
        let (client, el) = connect(&s, addr)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(s.batch_max as usize);
        with_stats(id, |st| *st = StreamStats::default());
        let _poller = spawn_poller(id, client.clone(), el, s.topics.clone(), s.qos != 0, tx);
        let mut window =
            Window { span: Duration::from_secs(s.dedup_secs as u64), keys: HashSet::new(), order: VecDeque::new() };
        let mut pending: Vec<Message> = Vec::new();
        let mut first_at: Option<tokio::time::Instant> = None;
        let mut renew = tokio::time::interval((lease / 4).max(Duration::from_millis(200)));
        renew.tick().await;
        let batch_span = Duration::from_secs(s.batch_secs.max(1) as u64);
        // Committed messages whose acknowledgement has not reached the client's request queue
        // yet. Acknowledging never waits: the queue is emptied only while the poller polls,
        // and the poller may itself be waiting for this loop to take a message — an awaited
        // `ack` here would deadlock the two once a few batches' acknowledgements filled it.
        let mut unacked: VecDeque<Message> = VecDeque::new();
        // The stream's table gains a small file a batch: it is compacted in the background every
        // `COMPACT_EVERY_BATCHES` batches, not only by the server's 10-minute sweep, so reads
        // (`latest`, the live page) do not slow down with hundreds of files.
        let mut batches_since_compaction = 0u32;
        let mut compaction: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            while let Some(p) = unacked.front() {
                if client.try_ack(p).is_err() {
                    break;
                }
                unacked.pop_front();
            }
            let deadline = first_at.map(|t| t + batch_span);
            let flush = tokio::select! {
                m = rx.recv() => {
                    let Some(p) = m else { return Err(CoreError::Internal("MQTT poller ended".into())) };
                    pending.push(p);
                    first_at.get_or_insert_with(tokio::time::Instant::now);
                    with_stats(id, |st| { st.received += 1; st.pending = pending.len() as u64; });
                    metrics::counter!("iot_messages_total", "stream" => s.name.clone(), "outcome" => "received").increment(1);
                    if probe.as_ref().is_some_and(|f| f(Probe::Received { pending: pending.len() })) {
                        return Ok(());
                    }
                    crate::ingest_lease::crash_point("iot.received");
                    pending.len() >= s.batch_max as usize
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => true,
                _ = renew.tick() => {
                    let now = Utc::now();
                    if !self.store.claim_stream(id, &node, lease_until(now), now).await? {
                        tracing::info!(stream = %id, "stream lease lost or stream disabled: stopping");
                        return Ok(());
                    }
                    // Changed settings take effect: stop, and the supervisor starts the stream
                    // again with them (what is not committed is delivered again).
                    if self.store.get_stream(id).await?.is_some_and(|now| now.updated_at != s.updated_at) {
                        tracing::info!(stream = %id, "stream settings changed: restarting");
                        return Ok(());
                    }
                    false
                }
                // Acknowledgements waiting for room in the client's queue.
                _ = tokio::time::sleep(Duration::from_millis(5)), if !unacked.is_empty() => false,
            };
            if !flush || pending.is_empty() {
                continue;
            }
            let started = Instant::now();
            let out = loop {
                match self.commit_batch(&s, &principal, &pending, &mut window).await {
                    Ok(o) => break o,
                    Err(e) => {
                        // Nothing acknowledged: retry the same messages (the broker keeps them
                        // too, should this node stop meanwhile).
                        tracing::warn!(stream = %id, error = %e, "committing a stream batch failed; retrying");
                        metrics::counter!("iot_batch_failures_total", "stream" => s.name.clone()).increment(1);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            if probe.as_ref().is_some_and(|f| f(Probe::Committed { rows: out.committed })) {
                return Ok(());
            }
            crate::ingest_lease::crash_point("iot.committed");
            for k in &out.keys {
                window.insert(k);
            }
            unacked.extend(pending.drain(..).filter(Message::needs_ack));
            let ms = started.elapsed().as_millis() as u64;
            let name = s.name.clone();
            metrics::counter!("iot_messages_total", "stream" => name.clone(), "outcome" => "committed")
                .increment(out.committed);
            metrics::counter!("iot_messages_total", "stream" => name.clone(), "outcome" => "quarantined")
                .increment(out.quarantined);
            metrics::counter!("iot_messages_total", "stream" => name.clone(), "outcome" => "duplicate")
                .increment(out.duplicates);
            metrics::histogram!("iot_batch_seconds", "stream" => name).record(started.elapsed().as_secs_f64());
            with_stats(id, |st| {
                st.committed += out.committed;
                st.quarantined += out.quarantined;
                st.duplicates += out.duplicates;
                st.batches += 1;
                st.last_batch_ms = ms;
                st.pending = 0;
            });
            first_at = None;
            batches_since_compaction += 1;
            if batches_since_compaction >= COMPACT_EVERY_BATCHES && compaction.as_ref().is_none_or(|h| h.is_finished())
            {
                batches_since_compaction = 0;
                let core = self.clone();
                let resource_id = s.resource_id;
                compaction = Some(tokio::spawn(async move {
                    let Ok(Some(r)) = core.store.get_resource(resource_id).await else { return };
                    if let Err(e) = core.compact_table(&r, crate::compaction::MIN_SMALL_FILES).await {
                        tracing::warn!(error = %e, %resource_id, "compacting a stream's table failed");
                    }
                }));
            }
        }
    }

    /// Decode, quarantine, deduplicate and commit one batch; nothing is acknowledged here.
    async fn commit_batch(
        &self,
        s: &StreamRecord,
        principal: &Principal,
        batch: &[Message],
        window: &mut Window,
    ) -> Result<Outcome, CoreError> {
        let resource = self.get_resource(Some(principal), &s.resource_id.to_string()).await?;
        let types: HashMap<Uuid, PayloadSchema> = {
            let mut m = HashMap::new();
            for t in self.store.list_device_types(Some(&s.department), 10_000).await? {
                if t.resource_id != s.resource_id {
                    continue;
                }
                if let Ok(input) = serde_json::from_value::<PayloadInput>(t.payload.clone())
                    && let Ok(schema) = PayloadSchema::parse(&input, &resource.content.items)
                {
                    m.insert(t.id, schema);
                }
            }
            m
        };
        // First pass: each message's JSON and the device ids it may name (`None`: oversize
        // or not a JSON object); then the registry is read once for the whole batch.
        let pre: Vec<Option<Vec<String>>> = batch
            .iter()
            .map(|p| {
                if p.payload().len() > s.max_payload as usize {
                    return None;
                }
                let json: serde_json::Value =
                    serde_json::from_slice(p.payload()).ok().filter(|v: &serde_json::Value| v.is_object())?;
                Some(candidates(&types, &p.topic(), &json))
            })
            .collect();
        let devices: HashMap<String, DeviceRecord> = {
            let mut ids: Vec<String> = pre.iter().flatten().flatten().cloned().collect();
            ids.sort_unstable();
            ids.dedup();
            self.store.get_devices(&ids).await?.into_iter().map(|d| (d.id.clone(), d)).collect()
        };
        let mut bad: Vec<InvalidRow> = Vec::new();
        let mut rows: Vec<Decoded> = Vec::new();
        let mut batch_keys: HashSet<String> = HashSet::new();
        let mut duplicates = 0u64;
        for (n, (p, pre)) in batch.iter().zip(pre).enumerate() {
            let line = n as u64 + 1;
            let topic = p.topic();
            let payload = p.payload();
            let q = |device: Option<&str>, code: &str, msg: String| {
                quarantine_row(line, &topic, device, code, msg, payload)
            };
            if payload.len() > s.max_payload as usize {
                bad.push(q(
                    None,
                    "oversize",
                    format!("消息超过 {} 字节 / the message is larger than {} bytes", s.max_payload, s.max_payload),
                ));
                continue;
            }
            let Some(candidates) = pre else {
                bad.push(q(None, "not_json", "消息不是 JSON 对象 / the message is not a JSON object".into()));
                continue;
            };
            // The device: the first id any of the resource's types finds that is registered.
            let found = candidates.iter().find_map(|c| devices.get(c)).cloned();
            let named = candidates.first().map(String::as_str);
            let Some(d) = found else {
                bad.push(q(named, "unknown_device", "设备未登记 / the device is not registered".into()));
                continue;
            };
            if d.department != s.department {
                bad.push(q(
                    Some(&d.id),
                    "other_department",
                    "设备属于其他部门 / the device belongs to another department".into(),
                ));
                continue;
            }
            if d.resource_id != s.resource_id {
                bad.push(q(
                    Some(&d.id),
                    "other_resource",
                    "设备为其他信息资源采集 / the device feeds another resource".into(),
                ));
                continue;
            }
            if d.status != "active" {
                bad.push(q(Some(&d.id), "device_disabled", "设备已停用 / the device is disabled".into()));
                continue;
            }
            let Some(schema) = types.get(&d.type_id) else {
                bad.push(q(Some(&d.id), "unknown_device_type", "设备类型不存在 / the device type is missing".into()));
                continue;
            };
            match schema.decode(&topic, payload) {
                Err(f) => bad.push(q(Some(&d.id), f.code, f.message)),
                Ok(mut row) if row.device == d.id => {
                    if window.contains(&row.key) || !batch_keys.insert(row.key.clone()) {
                        duplicates += 1;
                        continue;
                    }
                    row.row.insert(schema.device_item.clone(), serde_json::Value::String(d.id.clone()));
                    rows.push(row);
                }
                Ok(_) => bad.push(q(
                    Some(&d.id),
                    "device_mismatch",
                    "消息中的设备编码与设备不符 / the message names another device".into(),
                )),
            }
        }
        // One commit for the rows, through the upload pipeline.
        let mut committed = 0u64;
        let mut quarantined_by_rules = 0u64;
        let mut ingest_id = Uuid::now_v7();
        if !rows.is_empty() {
            let mut body = Vec::new();
            for r in &rows {
                serde_json::to_writer(&mut body, &r.row).map_err(|e| CoreError::Internal(e.to_string()))?;
                body.push(b'\n');
            }
            // The table's key check reads only the batch's time window when the key holds the
            // time item (the same one for every type of the resource).
            let mut time_items = types.values().map(|t| t.timestamp_item.as_str());
            let key_range = match (time_items.next(), rows.iter().map(|r| r.at).min(), rows.iter().map(|r| r.at).max())
            {
                (Some(item), Some(from), Some(to))
                    if time_items.all(|t| t == item)
                        && resource.content.items.iter().any(|i| {
                            i.key
                                && i.name.as_str() == item
                                && i.data_type == citydata_domain::vocab::DataType::Datetime
                        }) =>
                {
                    Some(citydata_lake::table::KeyRange {
                        item: item.to_string(),
                        from_micros: from.timestamp_micros(),
                        to_micros: to.timestamp_micros(),
                    })
                }
                _ => None,
            };
            let params = IngestParams {
                mode: Some("append".into()),
                format: Some("ndjson".into()),
                key_range,
                ..Default::default()
            };
            let meta = RequestMeta::new(None, Some(format!("mqtt:{}", s.id)));
            let (rec, _) = self
                .ingest_data(
                    &meta,
                    principal,
                    &s.resource_id.to_string(),
                    &params,
                    IngestBody::Stream(Box::new(std::io::Cursor::new(body))),
                    None,
                )
                .await?;
            ingest_id = rec.id;
            let report = rec.report.unwrap_or_default();
            committed = report["rows_committed"].as_u64().unwrap_or(0);
            quarantined_by_rules = report["rows_quarantined"].as_u64().unwrap_or(0);
            if report["all_quarantined"] != true && report["rejected"] != true {
                let mut seen: BTreeMap<String, DeviceSeen> = BTreeMap::new();
                for r in &rows {
                    let e = seen.entry(r.device.clone()).or_insert_with(|| DeviceSeen {
                        id: r.device.clone(),
                        at: r.at,
                        n: 0,
                        last_message: serde_json::Value::Object(r.row.clone()),
                    });
                    e.n += 1;
                    if r.at >= e.at {
                        e.at = r.at;
                        e.last_message = serde_json::Value::Object(r.row.clone());
                    }
                }
                let seen: Vec<DeviceSeen> = seen.into_values().collect();
                self.store.touch_devices(&seen).await?;
            }
        }
        if !bad.is_empty() {
            let lake = self.lake()?;
            let batch = citydata_lake::ingest::quarantine_batch(ingest_id, &bad).map_err(CoreError::from)?;
            lake.quarantine(s.resource_id, vec![batch]).await.map_err(CoreError::from)?;
        }
        Ok(Outcome {
            committed,
            quarantined: bad.len() as u64 + quarantined_by_rules,
            duplicates,
            keys: rows.into_iter().map(|r| r.key).collect(),
        })
    }
}

/// Consumers this process runs, by node and stream.
type Running = Mutex<HashMap<(String, Uuid), tokio::task::JoinHandle<()>>>;

fn running() -> &'static Running {
    static R: OnceLock<Running> = OnceLock::new();
    R.get_or_init(Default::default)
}

impl Core {
    /// Start a consumer for every enabled stream that is free or this node's and not running
    /// here yet (the server calls this every few seconds). Returns how many were started.
    pub async fn supervise_streams(&self) -> Result<usize, CoreError> {
        let now = Utc::now();
        let node = self.config.node_id.clone();
        let mut started = 0;
        for s in self.store.list_streams(None, 10_000).await? {
            let free =
                s.node.is_none() || s.node.as_deref() == Some(node.as_str()) || s.lease_until.is_none_or(|t| t < now);
            if !s.enabled || !free {
                continue;
            }
            let mut map = running().lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, h| !h.is_finished());
            let key = (node.clone(), s.id);
            if map.contains_key(&key) {
                continue;
            }
            let core = self.clone();
            let id = s.id;
            map.insert(
                key,
                tokio::spawn(async move {
                    if let Err(e) = core.run_stream(id, None).await {
                        tracing::warn!(stream = %id, error = %e, "stream consumer stopped");
                    }
                }),
            );
            started += 1;
        }
        Ok(started)
    }

    /// Stop this node's consumers (shutdown) and give their leases up. Uncommitted messages
    /// stay unacknowledged at the broker.
    pub async fn stop_streams(&self) {
        let node = self.config.node_id.clone();
        let ids: Vec<Uuid> = {
            let mut map = running().lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<(String, Uuid)> = map.keys().filter(|(n, _)| *n == node).cloned().collect();
            keys.into_iter()
                .filter_map(|k| {
                    let h = map.remove(&k)?;
                    h.abort();
                    Some(k.1)
                })
                .collect()
        };
        for id in ids {
            if let Err(e) = self.store.release_stream(id, &node).await {
                tracing::warn!(stream = %id, error = %e, "releasing a stream lease failed");
            }
        }
    }
}
