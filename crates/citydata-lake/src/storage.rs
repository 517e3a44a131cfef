//! Where the lake's objects live when it is not a local directory: S3-compatible object
//! storage (`lake_url = "s3://bucket/prefix"`), through `object_store`'s S3 store, registered
//! with delta-rs by [`register_s3`] (not delta-rs' own `s3` feature, which links the AWS SDK for
//! credential chains `object_store` resolves itself). Commits are conditional puts (`If-None-Match: *` on the next
//! `_delta_log/<version>.json`), so two nodes committing to one table never overwrite each
//! other: the second sees the version exists, and delta-rs either rebases its commit (an append
//! beside an append) or gives up with a conflict that the API answers as 409 `write_conflict`.
//!
//! This module turns the operator's settings into delta-rs storage options, checks that the
//! bucket answers (readiness), and presigns GET URLs for Delta Sharing.

use crate::error::{LakeError, Result};
use crate::table::Lake;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::signer::Signer;
use object_store::{ObjectStore, RetryConfig};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// The S3 settings of a lake on `s3://` (figment section `[lake_s3]`, environment
/// `CITYDATA__LAKE_S3__ENDPOINT` …). Every field is optional: without an endpoint the store is
/// Amazon S3 and credentials come from the AWS environment (variables, web identity, container
/// or instance credentials; `~/.aws` profile files are not read).
#[derive(Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    /// `http(s)://host:port` of an S3-compatible server (MinIO, Ceph RGW, moto, a cloud's OSS).
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`; most S3-compatible servers ignore it).
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Address buckets as `endpoint/bucket/key` (path style, what most self-hosted servers
    /// need) instead of `bucket.endpoint/key`. Default true.
    pub path_style: Option<bool>,
    /// Allow a plain `http://` endpoint (default false: https only).
    pub allow_http: bool,
    /// Retries of a failed request before it fails (default 10).
    pub max_retries: Option<u32>,
    /// Give up retrying a request after this many seconds (default 180).
    pub retry_timeout_secs: Option<u64>,
    /// One request's time limit, in seconds (default 30).
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allow_http)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout_secs", &self.retry_timeout_secs)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl S3Settings {
    /// The delta-rs / `object_store` storage options these settings mean.
    pub fn storage_options(&self) -> HashMap<String, String> {
        let mut o = HashMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
                o.insert(k.to_string(), v);
            }
        };
        put("aws_endpoint", self.endpoint.clone());
        put("aws_region", self.region.clone().or_else(|| Some("us-east-1".into())));
        put("aws_access_key_id", self.access_key_id.clone());
        put("aws_secret_access_key", self.secret_access_key.clone());
        put("aws_session_token", self.session_token.clone());
        put("aws_virtual_hosted_style_request", Some((!self.path_style.unwrap_or(true)).to_string()));
        put("aws_allow_http", Some(self.allow_http.to_string()));
        // Commits are `If-None-Match: *` puts; the default, said explicitly.
        put("aws_conditional_put", Some("etag".into()));
        put("max_retries", self.max_retries.map(|n| n.to_string()));
        put("retry_timeout", self.retry_timeout_secs.map(|s| format!("{s}s")));
        put("timeout", self.timeout_secs.map(|s| format!("{s}s")));
        o
    }
}

/// Why the lake's storage cannot be used, for readiness (`/readyz`): a stable reason, the
/// engine's text goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageProblem {
    /// No answer from the endpoint (refused, timed out, DNS).
    Unreachable,
    /// The bucket does not exist.
    BucketMissing,
    /// The server refused the credentials or the signature.
    CredentialsRejected,
    /// Anything else the store answered.
    Failed,
}

impl StorageProblem {
    fn classify(text: &str) -> Self {
        // The engine's text names the request (endpoint, port, bucket) and its durations; a
        // port such as 40371 or a retry after 1.403 s once read as "403". Only the words of
        // the answer are looked at: URLs are dropped, and the status only as "403 Forbidden".
        let t = text.split_whitespace().filter(|w| !w.contains("://")).collect::<Vec<_>>().join(" ").to_lowercase();
        if t.contains("nosuchbucket") || t.contains("bucket does not exist") {
            Self::BucketMissing
        } else if ["invalidaccesskeyid", "signaturedoesnotmatch", "accessdenied", "access denied", "forbidden"]
            .iter()
            .any(|k| t.contains(k))
        {
            Self::CredentialsRejected
        } else if ["connect", "timed out", "timeout", "dns", "refused", "error sending request"]
            .iter()
            .any(|k| t.contains(k))
        {
            Self::Unreachable
        } else {
            Self::Failed
        }
    }
}

/// delta-rs' object store for `s3://` and `s3a://` lakes: `object_store`'s S3 client built from
/// the AWS environment (`AWS_ACCESS_KEY_ID`, web identity, container and instance credentials)
/// and the lake's storage options, with delta-rs' retry settings. delta-rs' own `s3` feature
/// did the same through the AWS SDK (about 460 lines of Cargo.lock: STS, SSO, the smithy
/// runtime); the one thing it added, `~/.aws` profile files, is documented as not read
/// (credentials go in `[lake_s3]` or the environment).
#[derive(Debug, Default)]
struct S3StoreFactory;

impl deltalake::logstore::ObjectStoreFactory for S3StoreFactory {
    fn parse_url_opts(
        &self,
        url: &url::Url,
        config: &deltalake::logstore::StorageConfig,
    ) -> deltalake::DeltaResult<(deltalake::logstore::ObjectStoreRef, object_store::path::Path)> {
        let bucket = url.host_str().unwrap_or_default();
        let store = s3_builder(bucket, &config.raw).with_retry(config.retry.clone()).build()?;
        let prefix = object_store::path::Path::parse(url.path())?;
        Ok((std::sync::Arc::new(store), prefix))
    }
}

/// object_store's S3 client for `bucket`: the AWS environment, then the lake's storage options
/// (`aws_endpoint`, keys, …; names in any case, unknown ones ignored). The one place both
/// delta-rs' store and the lake's own requests (readiness, presigning) are configured.
fn s3_builder(bucket: &str, options: &std::collections::HashMap<String, String>) -> AmazonS3Builder {
    let mut b = AmazonS3Builder::from_env().with_url(format!("s3://{bucket}"));
    for (k, v) in options {
        if let Ok(key) = AmazonS3ConfigKey::from_str(&k.to_ascii_lowercase()) {
            b = b.with_config(key, v.clone());
        }
    }
    b
}

/// The plain Delta log store (commits are conditional puts) for `s3://` lakes.
#[derive(Debug, Default)]
struct S3LogStoreFactory;

impl deltalake::logstore::LogStoreFactory for S3LogStoreFactory {
    fn with_options(
        &self,
        prefixed_store: deltalake::logstore::ObjectStoreRef,
        root_store: deltalake::logstore::ObjectStoreRef,
        location: &url::Url,
        options: &deltalake::logstore::StorageConfig,
    ) -> deltalake::DeltaResult<std::sync::Arc<dyn deltalake::logstore::LogStore>> {
        Ok(deltalake::logstore::default_logstore(prefixed_store, root_store, location, options))
    }
}

/// Registers [`S3StoreFactory`] and the plain log store for `s3://` and `s3a://` with delta-rs
/// (once per process, before the first table is opened).
pub(crate) fn register_s3() {
    let stores = std::sync::Arc::new(S3StoreFactory);
    let logs = std::sync::Arc::new(S3LogStoreFactory);
    for scheme in ["s3://", "s3a://"] {
        let url = url::Url::parse(scheme).expect("a scheme URL");
        deltalake::logstore::object_store_factories().insert(url.clone(), stores.clone());
        deltalake::logstore::logstore_factories().insert(url, logs.clone());
    }
}

impl Lake {
    /// `true` when the lake is on object storage (not a local directory).
    pub fn is_remote(&self) -> bool {
        self.root().scheme() != "file"
    }

    /// An S3 client of the lake's bucket with `retry`, and the key prefix of the lake root.
    fn s3(&self, retry: Option<RetryConfig>) -> Result<(AmazonS3, String)> {
        let root = self.root();
        let mut b = s3_builder(root.host_str().unwrap_or_default(), &self.storage_options());
        if let Some(r) = retry {
            b = b.with_retry(r);
        }
        let store = b.build().map_err(|e| LakeError::Other(format!("s3 settings: {e}")))?;
        Ok((store, root.path().trim_start_matches('/').to_string()))
    }

    /// Can the lake's storage be used now? A local lake: its directory exists. A lake on S3:
    /// one listing of the root answers within a few seconds (one retry).
    pub async fn ping(&self) -> std::result::Result<(), (StorageProblem, String)> {
        if !self.is_remote() {
            let p = self.root().to_file_path().map_err(|_| (StorageProblem::Failed, "lake path".to_string()))?;
            return std::fs::metadata(&p).map(|_| ()).map_err(|e| (StorageProblem::Unreachable, e.to_string()));
        }
        let retry = RetryConfig { max_retries: 1, retry_timeout: Duration::from_secs(5), ..Default::default() };
        let (store, prefix) = self.s3(Some(retry)).map_err(|e| (StorageProblem::Failed, e.to_string()))?;
        let prefix = object_store::path::Path::from(prefix.as_str());
        let probe = store.list_with_delimiter(Some(&prefix));
        match tokio::time::timeout(Duration::from_secs(10), probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                let text = format!("{e:?}");
                Err((StorageProblem::classify(&text), e.to_string()))
            }
            Err(_) => Err((StorageProblem::Unreachable, "no answer within 10 s".into())),
        }
    }

    /// A presigned GET URL, valid `ttl`, of the object at `relative` (a path under the lake
    /// root); `None` for a local lake.
    pub async fn presigned_get(&self, relative: &str, ttl: Duration) -> Result<Option<url::Url>> {
        if !self.is_remote() {
            return Ok(None);
        }
        let (store, prefix) = self.s3(None)?;
        let path = object_store::path::Path::from(format!("{prefix}{relative}").as_str());
        // Presigning is local (no request): a file gone since gives the reader 404.
        let url = store
            .signed_url(http::Method::GET, &path, ttl)
            .await
            .map_err(|e| LakeError::Other(format!("presigning {relative}: {e}")))?;
        Ok(Some(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_storage_options_and_hide_the_secret() {
        let s = S3Settings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            access_key_id: Some("ak".into()),
            secret_access_key: Some("sk-secret".into()),
            allow_http: true,
            ..Default::default()
        };
        let o = s.storage_options();
        assert_eq!(o["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(o["aws_virtual_hosted_style_request"], "false");
        assert_eq!(o["aws_allow_http"], "true");
        assert_eq!(o["aws_region"], "us-east-1");
        assert!(!o.contains_key("max_retries"));
        assert!(!format!("{s:?}").contains("sk-secret"));
    }

    #[test]
    fn problems_are_classified() {
        assert_eq!(StorageProblem::classify("NoSuchBucket: The specified bucket"), StorageProblem::BucketMissing);
        assert_eq!(StorageProblem::classify("InvalidAccessKeyId"), StorageProblem::CredentialsRejected);
        assert_eq!(StorageProblem::classify("error sending request: Connection refused"), StorageProblem::Unreachable);
        assert_eq!(StorageProblem::classify("weird"), StorageProblem::Failed);
        // A port or a duration with 403 in it is not a refusal (CI once failed on this).
        assert_eq!(
            StorageProblem::classify(
                "Error performing GET http://127.0.0.1:40371/b?list-type=2 in 1.403s - error sending request"
            ),
            StorageProblem::Unreachable
        );
        assert_eq!(
            StorageProblem::classify("Server returned non-2xx status code: 403 Forbidden: <Error/>"),
            StorageProblem::CredentialsRejected
        );
    }
}
