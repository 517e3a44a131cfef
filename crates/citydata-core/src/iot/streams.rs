//! Stream settings (数据流): a broker, topic filters and a resource. The broker password is a
//! secret: stored as given (the broker needs it), never shown again, never in `Debug` or logs.

use super::{sees_registry, writes};
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, SubsecRound, Utc};
use citydata_domain::audit::Outcome;
use citydata_domain::principal::Principal;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::StreamRecord;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A new MQTT stream.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StreamInput {
    /// 数据流名称.
    pub name: String,
    /// The resource it writes (id, code or slug).
    pub resource: String,
    /// `mqtt://host:port` or `mqtts://host:port` (TLS).
    pub broker_url: String,
    /// MQTT topic filters (`+` and `#` wildcards), 1–20.
    pub topics: Vec<String>,
    pub username: Option<String>,
    /// Stored as a secret: never returned.
    pub password: Option<String>,
    /// 0 or 1 (default 1: acknowledged only after the commit).
    pub qos: Option<i32>,
    /// `"3.1.1"` (default) or `"5"`: the MQTT version the broker is spoken to in.
    pub mqtt_version: Option<String>,
    /// For `mqtts://`: PEM certificates of the authority that signed the broker's certificate
    /// (a city's own CA), trusted besides the system's roots.
    pub ca_pem: Option<String>,
    /// A micro-batch is committed after this many seconds (1–60, default 1) …
    pub batch_secs: Option<i32>,
    /// … or this many messages (1–100,000, default 5,000), whichever comes first.
    pub batch_max: Option<i32>,
    /// Larger messages are quarantined (bytes, 64–1,048,576, default 65,536).
    pub max_payload: Option<i32>,
    /// Duplicates (same device and time, or payload id) are dropped within this window
    /// (seconds, 0–86,400, default 3,600).
    pub dedup_secs: Option<i32>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// Changes to a stream (`password: ""` removes it).
#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StreamPatch {
    pub name: Option<String>,
    pub broker_url: Option<String>,
    pub topics: Option<Vec<String>>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub qos: Option<i32>,
    pub mqtt_version: Option<String>,
    /// `""` removes it.
    pub ca_pem: Option<String>,
    pub batch_secs: Option<i32>,
    pub batch_max: Option<i32>,
    pub max_payload: Option<i32>,
    pub dedup_secs: Option<i32>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamView {
    pub id: Uuid,
    pub name: String,
    pub department: String,
    pub resource_id: Uuid,
    pub broker_url: String,
    pub topics: Vec<String>,
    pub username: Option<String>,
    /// A password is stored (it is never shown).
    pub has_password: bool,
    pub qos: i32,
    /// `"3.1.1"` or `"5"`.
    pub mqtt_version: String,
    /// The CA certificates trusted for this broker besides the system's (public, shown).
    pub ca_pem: Option<String>,
    pub batch_secs: i32,
    pub batch_max: i32,
    pub max_payload: i32,
    pub dedup_secs: i32,
    pub enabled: bool,
    /// The node consuming it and until when its lease runs.
    pub node: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// This node's counters since it took the stream (absent elsewhere).
    pub stats: Option<super::consumer::StreamStats>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) fn stream_view(s: StreamRecord) -> StreamView {
    StreamView {
        stats: super::consumer::stats_of(s.id),
        has_password: s.password.is_some(),
        id: s.id,
        name: s.name,
        department: s.department,
        resource_id: s.resource_id,
        broker_url: s.broker_url,
        topics: s.topics,
        username: s.username,
        qos: s.qos,
        mqtt_version: version_name(s.mqtt_version).to_string(),
        ca_pem: s.ca_pem,
        batch_secs: s.batch_secs,
        batch_max: s.batch_max,
        max_payload: s.max_payload,
        dedup_secs: s.dedup_secs,
        enabled: s.enabled,
        node: s.node,
        lease_until: s.lease_until,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

/// Host and port of a broker URL; `tls` for `mqtts`.
pub(crate) fn broker_address(url: &str) -> Option<(String, u16, bool)> {
    let u = url::Url::parse(url.trim()).ok()?;
    let tls = match u.scheme() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        _ => return None,
    };
    if !u.username().is_empty() || u.password().is_some() || !matches!(u.path(), "" | "/") || u.query().is_some() {
        return None;
    }
    let host = u.host_str()?.trim_matches(['[', ']']).to_string();
    Some((host, u.port().unwrap_or(if tls { 8883 } else { 1883 }), tls))
}

/// `"3.1.1"` for 4, `"5"` for 5.
fn version_name(v: i32) -> &'static str {
    if v == 5 { "5" } else { "3.1.1" }
}

/// The protocol level of a version name (`None`: not one we speak).
fn version_level(errs: &mut ValidationErrors, name: Option<&str>, current: i32) -> i32 {
    match name.map(str::trim) {
        None => current,
        Some("3.1.1" | "4" | "311") => 4,
        Some("5" | "5.0") => 5,
        Some(_) => {
            errs.push(FieldError::new(
                "mqtt_version",
                "unsupported_version",
                "mqtt_version 须为 \"3.1.1\" 或 \"5\" / mqtt_version is \"3.1.1\" or \"5\"",
            ));
            current
        }
    }
}

/// The certificates of a stream's `ca_pem` (at least one; nothing but certificates).
pub(crate) fn ca_certificates(pem: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::{PemObject, SectionKind};
    if pem.len() > 64 * 1024 {
        return Err("ca_pem 至多 64 KiB / ca_pem is at most 64 KiB".into());
    }
    let mut certs = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        match section {
            Ok((SectionKind::Certificate, der)) => certs.push(rustls::pki_types::CertificateDer::from(der)),
            Ok(_) => {
                return Err(
                    "ca_pem 只能包含证书（CERTIFICATE），不能包含私钥 / ca_pem holds certificates only, never a key"
                        .into(),
                );
            }
            Err(_) => return Err("ca_pem 不是有效的 PEM / ca_pem is not valid PEM".into()),
        }
    }
    if certs.is_empty() {
        return Err("ca_pem 中没有证书 / ca_pem holds no certificate".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs.iter().cloned());
    if added != certs.len() {
        return Err("ca_pem 中有无法解析的证书 / a certificate in ca_pem cannot be parsed".into());
    }
    Ok(certs)
}

fn check_topic(t: &str) -> bool {
    let levels: Vec<&str> = t.split('/').collect();
    !t.is_empty()
        && t.len() <= 256
        && !t.starts_with("$share")
        && !t.chars().any(|c| c.is_control())
        && levels
            .iter()
            .enumerate()
            .all(|(i, l)| (*l == "#" && i == levels.len() - 1) || *l == "+" || (!l.contains('#') && !l.contains('+')))
}

fn range(errs: &mut ValidationErrors, field: &str, v: Option<i32>, default: i32, lo: i32, hi: i32) -> i32 {
    let v = v.unwrap_or(default);
    if !(lo..=hi).contains(&v) {
        errs.push(FieldError::new(
            field,
            "out_of_range",
            format!("{field} 须在 {lo}–{hi} 之间 / {field} is {lo}–{hi}"),
        ));
    }
    v
}

fn check(errs: &mut ValidationErrors, s: &StreamRecord) {
    if s.name.trim().is_empty() || s.name.chars().count() > 100 {
        errs.push(FieldError::new("name", "invalid_name", "name 须为 1–100 个字符 / name is 1–100 characters"));
    }
    if broker_address(&s.broker_url).is_none() {
        errs.push(FieldError::new(
            "broker_url",
            "invalid_url",
            "broker_url 须为 mqtt://主机:端口 或 mqtts://主机:端口 / broker_url is mqtt://host:port or mqtts://host:port",
        ));
    }
    if s.topics.is_empty() || s.topics.len() > 20 || !s.topics.iter().all(|t| check_topic(t)) {
        errs.push(FieldError::new(
            "topics",
            "invalid_topic",
            "topics 须为 1–20 个有效的 MQTT 主题过滤器 / topics are 1–20 valid MQTT topic filters",
        ));
    }
    if let Some(pem) = &s.ca_pem {
        if broker_address(&s.broker_url).is_some_and(|(_, _, tls)| !tls) {
            errs.push(FieldError::new(
                "ca_pem",
                "tls_only",
                "ca_pem 仅用于 mqtts:// 代理 / ca_pem is for mqtts:// brokers only",
            ));
        } else if let Err(m) = ca_certificates(pem) {
            errs.push(FieldError::new("ca_pem", "invalid_certificate", m));
        }
    }
    if !matches!(s.qos, 0 | 1) {
        errs.push(FieldError::new("qos", "out_of_range", "qos 须为 0 或 1 / qos is 0 or 1"));
    }
    for (f, v) in [("username", &s.username), ("password", &s.password)] {
        if v.as_ref().is_some_and(|v| v.len() > 256 || v.chars().any(char::is_control)) {
            errs.push(FieldError::new(
                f,
                "invalid_value",
                format!("{f} 至多 256 个可见字符 / {f} is at most 256 visible characters"),
            ));
        }
    }
}

impl Core {
    /// The broker must be reachable under the outgoing address rule (the webhooks' and the
    /// collection sources' rule): no loopback, link-local (cloud metadata), private or
    /// reserved address unless inside `webhook_allow_cidrs`. Otherwise a steward could make
    /// the server connect into its own network and learn, from the stream's status, which
    /// internal ports answer.
    async fn check_broker(&self, errs: &mut ValidationErrors, url: &str) {
        let Some((host, port, _)) = broker_address(url) else { return };
        if let Err(m) = crate::net::resolve_allowed(&host, port, &self.config.webhook_allow).await {
            errs.push(FieldError::new("broker_url", "address_not_allowed", m));
        }
    }
}

impl Core {
    /// Create a stream into a resource (its provider's stewards and admins).
    pub async fn create_stream(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        input: &StreamInput,
    ) -> Result<StreamView, CoreError> {
        let resource = self.get_resource(Some(p), &input.resource).await?;
        let dept = resource.content.provider.to_string();
        if !writes(p, &dept) {
            self.audit_iot(
                meta,
                p,
                "iot.stream.create",
                format!("resource:{}", resource.content.code),
                Outcome::Denied,
            )
            .await?;
            return Err(CoreError::forbidden());
        }
        let mut errs = ValidationErrors::new();
        let now = Utc::now().trunc_subsecs(6);
        let s = StreamRecord {
            id: Uuid::now_v7(),
            name: input.name.trim().to_string(),
            department: dept,
            resource_id: resource.id,
            broker_url: input.broker_url.trim().to_string(),
            topics: input.topics.iter().map(|t| t.trim().to_string()).collect(),
            username: input.username.clone().filter(|u| !u.is_empty()),
            password: input.password.clone().filter(|u| !u.is_empty()),
            qos: input.qos.unwrap_or(1),
            mqtt_version: version_level(&mut errs, input.mqtt_version.as_deref(), 4),
            ca_pem: input.ca_pem.clone().filter(|p| !p.trim().is_empty()),
            batch_secs: range(&mut errs, "batch_secs", input.batch_secs, 1, 1, 60),
            batch_max: range(&mut errs, "batch_max", input.batch_max, 5_000, 1, 100_000),
            max_payload: range(&mut errs, "max_payload", input.max_payload, 65_536, 64, 1_048_576),
            dedup_secs: range(&mut errs, "dedup_secs", input.dedup_secs, 3_600, 0, 86_400),
            enabled: input.enabled.unwrap_or(true),
            node: None,
            lease_until: None,
            created_at: now,
            updated_at: now,
        };
        check(&mut errs, &s);
        self.check_broker(&mut errs, &s.broker_url).await;
        errs.into_result()?;
        self.store.create_stream(&s).await?;
        self.audit_iot(meta, p, "iot.stream.create", format!("stream:{}", s.id), Outcome::Success).await?;
        Ok(stream_view(s))
    }

    /// Streams of the caller's departments (platform admins: all).
    pub async fn list_streams(&self, p: &Principal) -> Result<Vec<StreamView>, CoreError> {
        let all = self.store.list_streams(None, 1000).await?;
        Ok(all.into_iter().filter(|s| sees_registry(p, &s.department)).map(stream_view).collect())
    }

    pub async fn get_stream(&self, p: &Principal, id: Uuid) -> Result<StreamView, CoreError> {
        match self.store.get_stream(id).await? {
            Some(s) if sees_registry(p, &s.department) => Ok(stream_view(s)),
            _ => Err(CoreError::NotFound(format!("数据流不存在：{id} / no such stream: {id}"))),
        }
    }

    pub async fn update_stream(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        id: Uuid,
        patch: &StreamPatch,
    ) -> Result<StreamView, CoreError> {
        let mut s = match self.store.get_stream(id).await? {
            Some(s) if sees_registry(p, &s.department) => s,
            _ => return Err(CoreError::NotFound(format!("数据流不存在：{id} / no such stream: {id}"))),
        };
        if !writes(p, &s.department) {
            self.audit_iot(meta, p, "iot.stream.update", format!("stream:{id}"), Outcome::Denied).await?;
            return Err(CoreError::forbidden());
        }
        let mut errs = ValidationErrors::new();
        if let Some(v) = &patch.name {
            s.name = v.trim().to_string();
        }
        if let Some(v) = &patch.broker_url {
            s.broker_url = v.trim().to_string();
            // Checked only when it changes: the demo's broker, set by the operator, stays.
            self.check_broker(&mut errs, &s.broker_url).await;
        }
        if let Some(v) = &patch.topics {
            s.topics = v.iter().map(|t| t.trim().to_string()).collect();
        }
        if let Some(v) = &patch.username {
            s.username = Some(v.clone()).filter(|v| !v.is_empty());
        }
        if let Some(v) = &patch.password {
            s.password = Some(v.clone()).filter(|v| !v.is_empty());
        }
        if let Some(v) = patch.qos {
            s.qos = v;
        }
        s.mqtt_version = version_level(&mut errs, patch.mqtt_version.as_deref(), s.mqtt_version);
        if let Some(v) = &patch.ca_pem {
            s.ca_pem = Some(v.clone()).filter(|p| !p.trim().is_empty());
        }
        s.batch_secs = range(&mut errs, "batch_secs", patch.batch_secs, s.batch_secs, 1, 60);
        s.batch_max = range(&mut errs, "batch_max", patch.batch_max, s.batch_max, 1, 100_000);
        s.max_payload = range(&mut errs, "max_payload", patch.max_payload, s.max_payload, 64, 1_048_576);
        s.dedup_secs = range(&mut errs, "dedup_secs", patch.dedup_secs, s.dedup_secs, 0, 86_400);
        if let Some(v) = patch.enabled {
            s.enabled = v;
        }
        check(&mut errs, &s);
        errs.into_result()?;
        s.updated_at = Utc::now().trunc_subsecs(6);
        self.store.update_stream(&s).await?;
        self.audit_iot(meta, p, "iot.stream.update", format!("stream:{id}"), Outcome::Success).await?;
        Ok(stream_view(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_and_topics() {
        assert_eq!(broker_address("mqtt://127.0.0.1:1884"), Some(("127.0.0.1".into(), 1884, false)));
        assert_eq!(broker_address("mqtts://broker.example"), Some(("broker.example".into(), 8883, true)));
        assert_eq!(broker_address("http://x"), None);
        assert_eq!(broker_address("mqtt://u:p@x"), None);
        assert!(check_topic("city/air/+"));
        assert!(check_topic("city/#"));
        assert!(!check_topic("city/#/x"));
        assert!(!check_topic("city/a+"));
        assert!(!check_topic("$share/g/city/#"));
    }
}
