//! `citydata backup --to DIR` and `citydata restore --from DIR` (备份与恢复).
//!
//! A backup is taken online, while servers may be writing, in this order:
//! 1. the audit key and the signed checkpoint file beside it (complete lines only), so that
//!    every checkpoint in the copy names an entry the metadata copy holds;
//! 2. the secret key (sessions, HMAC pseudonyms) when it lives in the data directory;
//! 3. the metadata: SQLite `VACUUM INTO` (one read transaction), or on PostgreSQL `pg_dump
//!    --format=custom` (one snapshot), run from `PATH`;
//! 4. every table the metadata copy knows (resource tables and their quarantine tables), each
//!    at its newest committed version read *after* the metadata copy: the `_delta_log` up to
//!    that version and the files those commits name. Delta never rewrites a file, so a commit
//!    arriving meanwhile is simply not in the copy and no table is half copied; each table is
//!    at or past every version the metadata records (checked), and an ingest the metadata
//!    copy shows running but whose commit made it into the lake copy is settled at start like
//!    any interrupted ingest. Tables of resources created after the metadata copy are left out
//!    (listed as skipped).
//! 5. `MANIFEST.json`: format version, time, store kind, tables with versions and file counts,
//!    and the size and SHA-256 of every file.
//!
//! The search index is not copied: `restore` rebuilds it from the metadata. Restore verifies the
//! whole manifest before it writes anything, refuses a non-empty target, copies, migrates,
//! rebuilds the index and verifies the audit chain.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use citydata_domain::resource::Audience;
use citydata_server::{ResolvedSettings, Settings, open_store};
use citydata_store::{ResourceFilter, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const MANIFEST: &str = "MANIFEST.json";
pub const FORMAT: &str = "citydata-backup";
pub const FORMAT_VERSION: u32 = 1;
const SQLITE_COPY: &str = "metadata.db";
const PG_DUMP: &str = "metadata.pgdump";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub created_at: DateTime<Utc>,
    pub citydata_version: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// The metadata copy, relative to the backup directory.
    pub metadata: String,
    /// How the metadata was copied (`VACUUM INTO`, `pg_dump --format=custom`).
    pub metadata_method: String,
    /// `false` when the secret key is set in the configuration (not in the data directory):
    /// the restored node needs the same configuration.
    pub secret_key_included: bool,
    pub tables: Vec<TableEntry>,
    /// Table directories left out because the metadata copy does not know their resource.
    pub skipped_tables: Vec<String>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TableEntry {
    pub resource_id: String,
    /// `tables` or `quarantine`.
    pub kind: String,
    pub version: i64,
    pub files: usize,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct FileEntry {
    /// Relative to the backup directory, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Copy `src` to the new file `dst` (parents created), returning its size and SHA-256. With
/// `limit`, only the first `limit` bytes are copied.
fn copy_hashed(src: &Path, dst: &Path, limit: Option<u64>) -> Result<(u64, String)> {
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let input = std::fs::File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut input: Box<dyn Read> = match limit {
        Some(n) => Box::new(input.take(n)),
        None => Box::new(input),
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .with_context(|| format!("cannot create {}", dst.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).with_context(|| format!("cannot read {}", src.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).with_context(|| format!("cannot write {}", dst.display()))?;
        size += n as u64;
    }
    out.sync_all().with_context(|| format!("cannot write {}", dst.display()))?;
    Ok((size, hex::encode(hasher.finalize())))
}

fn hash_file(p: &Path) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).with_context(|| format!("cannot read {}", p.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(unix)]
fn make_private(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the permissions of {}", p.display()))
}

#[cfg(not(unix))]
fn make_private(_p: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

fn rel_string(p: &Path) -> String {
    p.components().map(|c| c.as_os_str().to_string_lossy().to_string()).collect::<Vec<_>>().join("/")
}

/// Is `dir` missing or empty?
fn is_empty_dir(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => Ok(rd.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

fn list_files(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            list_files(&p, base, out)?;
        } else {
            out.push(p.strip_prefix(base).unwrap_or(&p).to_path_buf());
        }
    }
    Ok(())
}

/// The SQLite file of a `sqlite://path` (or `sqlite:path`) URL.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// libpq environment for `url`, so that the password never appears in a process list.
fn pg_env(url: &str) -> Result<Vec<(&'static str, String)>> {
    let u = reqwest::Url::parse(url).context("database_url is not a valid URL")?;
    let dec = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).to_string()
    };
    let mut env = vec![];
    if let Some(h) = u.host_str() {
        env.push(("PGHOST", h.to_string()));
    }
    if let Some(p) = u.port() {
        env.push(("PGPORT", p.to_string()));
    }
    if !u.username().is_empty() {
        env.push(("PGUSER", dec(u.username())));
    }
    if let Some(p) = u.password() {
        env.push(("PGPASSWORD", dec(p)));
    }
    let db = u.path().trim_start_matches('/');
    if !db.is_empty() {
        env.push(("PGDATABASE", dec(db)));
    }
    for (k, v) in u.query_pairs() {
        let var = match k.as_ref() {
            "sslmode" => "PGSSLMODE",
            "sslrootcert" => "PGSSLROOTCERT",
            "sslcert" => "PGSSLCERT",
            "sslkey" => "PGSSLKEY",
            "application_name" => "PGAPPNAME",
            "options" => "PGOPTIONS",
            _ => continue,
        };
        env.push((var, v.to_string()));
    }
    Ok(env)
}

fn pg_tool(name: &str) -> Result<std::process::Command> {
    let found = std::process::Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        bail!(
            "找不到 {name}：请安装 PostgreSQL 客户端工具（主版本不低于服务器）并加入 PATH / {name} is not on PATH: install the PostgreSQL client tools (same major version as the server, or newer)"
        );
    }
    let mut c = std::process::Command::new(name);
    for k in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE", "PGSSLMODE", "PGOPTIONS"] {
        c.env_remove(k);
    }
    Ok(c)
}

/// A local lake directory (backups of `s3://` lakes are the object store's business).
fn local_lake(lake_url: &str) -> Result<PathBuf> {
    if lake_url.contains("://") && !lake_url.starts_with("file://") {
        bail!(
            "湖位于对象存储（{lake_url}），citydata backup 只复制本地目录中的湖；请用对象存储的版本控制或复制功能备份 / the lake is on object storage ({lake_url}); citydata backup copies local lakes only: back it up with the object store's versioning or replication"
        );
    }
    let p = lake_url.strip_prefix("file://").unwrap_or(lake_url);
    Ok(PathBuf::from(p))
}

struct Collected {
    files: Vec<FileEntry>,
}

impl Collected {
    fn add(&mut self, rel: &Path, size: u64, sha256: String) {
        self.files.push(FileEntry { path: rel_string(rel), size, sha256 });
    }
}

/// `citydata backup --to DIR`.
pub async fn backup(r: ResolvedSettings, to: &Path) -> Result<ExitCode> {
    // Validations.
    if to.exists() && !to.is_dir() {
        bail!(
            "备份目标 {} 已存在且不是目录 / backup target {} exists and is not a directory",
            to.display(),
            to.display()
        );
    }
    if !is_empty_dir(to)? {
        bail!(
            "备份目录 {} 已存在且不为空，拒绝覆盖；请指定新目录 / backup directory {} exists and is not empty; refusing to overwrite it: choose a new directory",
            to.display(),
            to.display()
        );
    }
    let lake_root = local_lake(&r.lake_url)?;
    let postgres = is_postgres(&r.database_url);
    if !postgres {
        let db = sqlite_path(&r.database_url)
            .ok_or_else(|| anyhow::anyhow!("database_url {} is neither SQLite nor PostgreSQL", r.database_url))?;
        if !db.is_file() {
            bail!(
                "数据目录中没有数据库 {}，没有可备份的内容 / no database at {}: nothing to back up",
                db.display(),
                db.display()
            );
        }
    }
    let store = open_store(&r.database_url).await?;
    if !store.ready().await? {
        bail!("数据库未完成迁移，请先运行 citydata migrate / the database is not migrated: run citydata migrate first");
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    make_private(to, 0o700)?;
    let mut c = Collected { files: vec![] };

    // 1. The audit key, then the checkpoint file (whole lines: a line being appended is left out).
    if r.audit_key_file.is_file() {
        let (n, h) = copy_hashed(&r.audit_key_file, &to.join("audit.key"), None)?;
        make_private(&to.join("audit.key"), 0o600)?;
        c.add(Path::new("audit.key"), n, h);
    }
    let checkpoints = r.audit_key_file.with_file_name("audit-checkpoints.jsonl");
    if checkpoints.is_file() {
        let bytes = std::fs::read(&checkpoints).with_context(|| format!("cannot read {}", checkpoints.display()))?;
        let whole = bytes.iter().rposition(|b| *b == b'\n').map(|i| i as u64 + 1).unwrap_or(0);
        let (n, h) = copy_hashed(&checkpoints, &to.join("audit-checkpoints.jsonl"), Some(whole))?;
        c.add(Path::new("audit-checkpoints.jsonl"), n, h);
    }
    // 2. The secret key, when it is a file of the data directory.
    let secret_file = r.data_dir.join("secret_key");
    let secret_key_included =
        secret_file.is_file() && std::fs::read_to_string(&secret_file).is_ok_and(|s| s.trim() == r.secret_key.expose());
    if secret_key_included {
        let (n, h) = copy_hashed(&secret_file, &to.join("secret_key"), None)?;
        make_private(&to.join("secret_key"), 0o600)?;
        c.add(Path::new("secret_key"), n, h);
    } else {
        eprintln!(
            "注意：secret_key 来自配置而非数据目录，未写入备份；恢复后的节点须使用相同配置 / note: secret_key comes from the configuration, not the data directory, and is not in the backup: the restored node needs the same configuration"
        );
    }

    // 3. The metadata.
    let (metadata, method, view): (&str, &str, std::sync::Arc<dyn Store>) = if postgres {
        let out = to.join(PG_DUMP);
        let status = pg_tool("pg_dump")?
            .envs(pg_env(&r.database_url)?)
            .args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
            .arg(&out)
            .status()
            .context("cannot run pg_dump")?;
        if !status.success() {
            bail!("pg_dump 失败 / pg_dump failed ({status})");
        }
        // pg_dump read one snapshot; the live database now knows at least as much.
        (PG_DUMP, "pg_dump --format=custom", store.clone())
    } else {
        let out = to.join(SQLITE_COPY);
        store.backup_to(&out).await.context("copying the SQLite database (VACUUM INTO) failed")?;
        store.close().await;
        let copy = open_store(&format!("sqlite://{}", out.display())).await?;
        (SQLITE_COPY, "sqlite VACUUM INTO", copy)
    };

    // 4. Tables: the resources the metadata copy knows, then each table's newest commit.
    let mut known = std::collections::HashMap::new();
    let filter = ResourceFilter::new(Audience::Platform);
    let total = view.count_resources(&filter).await?;
    let mut offset = 0u64;
    while offset < total {
        let page = view.list_resources(&filter, 500, offset).await?;
        if page.is_empty() {
            break;
        }
        offset += page.len() as u64;
        for res in page {
            let recorded = view
                .list_ingests(res.id, 100_000)
                .await?
                .iter()
                .filter(|i| i.state == citydata_store::IngestState::Committed)
                .filter_map(|i| i.report.as_ref().and_then(|r| r.get("table_version")).and_then(|v| v.as_i64()))
                .max();
            known.insert(res.id.to_string(), recorded);
        }
    }
    view.close().await;
    if !postgres {
        // The copy was opened as a database: fold back anything SQLite left beside it.
        for suffix in ["-wal", "-shm"] {
            let p = to.join(format!("{SQLITE_COPY}{suffix}"));
            if p.exists() {
                std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
    }
    let (n, h) = hash_file(&to.join(metadata))?;
    c.add(Path::new(metadata), n, h);

    let mut tables = vec![];
    let mut skipped = vec![];
    for kind in ["tables", "quarantine"] {
        let dir = lake_root.join(kind);
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut ids: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
        ids.sort();
        for id in ids {
            let table_dir = dir.join(&id);
            let Some(version) = citydata_lake::snapshot::latest_committed_version(&table_dir)? else { continue };
            let Some(recorded) = known.get(&id) else {
                skipped.push(format!("{kind}/{id}"));
                continue;
            };
            if kind == "tables"
                && let Some(rv) = recorded
                && *rv > version
            {
                bail!(
                    "表 {id} 在湖中的版本 {version} 早于元数据记录的版本 {rv}（湖被删改过？）/ table {id} is at version {version} in the lake but the metadata records version {rv}: was the lake changed?"
                );
            }
            let files = citydata_lake::snapshot::files_at_version(&table_dir, version)
                .await
                .with_context(|| format!("cannot list the files of {kind}/{id} at version {version}"))?;
            let mut bytes = 0;
            for f in &files {
                let rel = Path::new("lake").join(kind).join(&id).join(f);
                let (n, h) = copy_hashed(&table_dir.join(f), &to.join(&rel), None)?;
                bytes += n;
                c.add(&rel, n, h);
            }
            tables.push(TableEntry { resource_id: id.clone(), kind: kind.into(), version, files: files.len(), bytes });
        }
    }

    // 4b. File distributions: content-addressed blobs (`files/sha256/..`) never change once
    // written; every finished one is copied (a superset of what the metadata copy names).
    let files_dir = lake_root.join("files");
    let mut blobs = vec![];
    if files_dir.is_dir() {
        list_files(&files_dir, &lake_root, &mut blobs)?;
    }
    blobs.sort();
    for rel in blobs.into_iter().filter(|r| r.components().nth(1).is_some_and(|c| c.as_os_str() == "sha256")) {
        let name = rel.file_name().map(|n| n.to_string_lossy().len()).unwrap_or(0);
        if name != 64 {
            continue; // an upload in progress (the store's temporary name)
        }
        let dst = Path::new("lake").join(&rel);
        let (n, h) = copy_hashed(&lake_root.join(&rel), &to.join(&dst), None)?;
        c.add(&dst, n, h);
    }

    // 5. The manifest.
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_at: Utc::now(),
        citydata_version: env!("CARGO_PKG_VERSION").into(),
        store: if postgres { "postgres" } else { "sqlite" }.into(),
        metadata: metadata.into(),
        metadata_method: method.into(),
        secret_key_included,
        tables,
        skipped_tables: skipped,
        files: c.files,
    };
    let text = serde_json::to_string_pretty(&manifest)?;
    let tmp = to.join(".MANIFEST.json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, to.join(MANIFEST))?;
    let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    println!(
        "备份完成 / backup written to {}: {} ({}), {} 张表 tables, {} 个文件 files, {:.1} MB",
        to.display(),
        manifest.store,
        manifest.metadata_method,
        manifest.tables.len(),
        manifest.files.len(),
        bytes as f64 / 1e6
    );
    for t in &manifest.tables {
        println!("  {}/{} version {} ({} files)", t.kind, t.resource_id, t.version, t.files);
    }
    if !manifest.skipped_tables.is_empty() {
        println!(
            "  跳过（元数据副本之后新建的资源）/ skipped (resources created after the metadata copy): {}",
            manifest.skipped_tables.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Read and check a backup directory: the manifest parses, every file it lists is there with
/// its size and SHA-256, and nothing else is.
pub fn verify_backup(from: &Path) -> Result<Manifest> {
    let mpath = from.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).map_err(|e| {
        anyhow::anyhow!(
            "{} 不是 citydata 备份（读不到 {MANIFEST}：{e}）/ {} is not a citydata backup (cannot read {MANIFEST}: {e})",
            from.display(),
            from.display()
        )
    })?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{MANIFEST} 无法解析 / {MANIFEST} does not parse: {e}"))?;
    if m.format != FORMAT || m.format_version != FORMAT_VERSION {
        bail!(
            "备份格式 {} v{} 不受支持（支持 {FORMAT} v{FORMAT_VERSION}）/ backup format {} v{} is not supported (this citydata reads {FORMAT} v{FORMAT_VERSION})",
            m.format,
            m.format_version,
            m.format,
            m.format_version
        );
    }
    let mut listed = std::collections::HashSet::new();
    for f in &m.files {
        let rel = Path::new(&f.path);
        if !rel.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            bail!("清单中的路径无效 / invalid path in the manifest: {}", f.path);
        }
        let p = from.join(rel);
        if !p.is_file() {
            bail!("备份不完整：缺少文件 {} / the backup is incomplete: {} is missing", f.path, f.path);
        }
        let (size, sha) = hash_file(&p)?;
        if size != f.size || sha != f.sha256 {
            bail!(
                "备份已损坏：文件 {} 与清单不符（大小 {} / {}）/ the backup is damaged: {} does not match the manifest (size {} vs {}, sha256 differs: {})",
                f.path,
                size,
                f.size,
                f.path,
                size,
                f.size,
                sha != f.sha256
            );
        }
        listed.insert(f.path.clone());
    }
    let mut all = vec![];
    list_files(from, from, &mut all)?;
    for p in all {
        let s = rel_string(&p);
        if s != MANIFEST && !listed.contains(&s) {
            bail!("备份中有清单之外的文件 {s} / the backup holds {s}, which the manifest does not list");
        }
    }
    if !listed.contains(&m.metadata) {
        bail!("清单未列出元数据副本 {} / the manifest does not list the metadata copy {}", m.metadata, m.metadata);
    }
    Ok(m)
}

/// `citydata restore --from DIR` into an empty data directory (and, on PostgreSQL, an empty
/// database).
pub async fn restore(settings: Settings, from: &Path) -> Result<ExitCode> {
    // Validations, before anything is written.
    let m = verify_backup(from)?;
    let data_dir = settings.data_dir.clone();
    if data_dir.exists() && !data_dir.is_dir() {
        bail!("数据目录 {} 不是目录 / data directory {} is not a directory", data_dir.display(), data_dir.display());
    }
    if !is_empty_dir(&data_dir)? {
        bail!(
            "数据目录 {} 不为空，拒绝恢复（恢复只写入空目录）/ data directory {} is not empty; restore writes only into an empty data directory",
            data_dir.display(),
            data_dir.display()
        );
    }
    let database_url = settings.database_url.clone().filter(|s| !s.trim().is_empty());
    let postgres = database_url.as_deref().is_some_and(is_postgres);
    let target_store = if postgres { "postgres" } else { "sqlite" };
    if target_store != m.store {
        bail!(
            "备份来自 {}，目标配置为 {}；只能恢复到同一种数据库 / the backup is of a {} store and the target is configured for {}: restore into the same kind of store",
            m.store,
            target_store,
            m.store,
            target_store
        );
    }
    let lake_root = match settings.lake_url.clone().filter(|s| !s.trim().is_empty()) {
        Some(u) => local_lake(&u)?,
        None => data_dir.join("lake"),
    };
    if !is_empty_dir(&lake_root)? {
        bail!("湖目录 {} 不为空 / lake directory {} is not empty", lake_root.display(), lake_root.display());
    }
    let audit_key_file = settings
        .audit_key_file
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| data_dir.join("audit.key"));
    let checkpoint_file = audit_key_file.with_file_name("audit-checkpoints.jsonl");
    for p in [&audit_key_file, &checkpoint_file] {
        if p.exists() {
            bail!("{} 已存在，拒绝覆盖 / {} exists; refusing to overwrite it", p.display(), p.display());
        }
    }
    let sqlite_file = if postgres {
        None
    } else {
        let f = match &database_url {
            Some(u) => sqlite_path(u).ok_or_else(|| anyhow::anyhow!("database_url {u} is not a SQLite file"))?,
            None => data_dir.join("citydata.db"),
        };
        if f.exists() {
            bail!(
                "数据库文件 {} 已存在，拒绝覆盖 / database file {} exists; refusing to overwrite it",
                f.display(),
                f.display()
            );
        }
        Some(f)
    };
    if let Some(url) = &database_url
        && postgres
    {
        let store = open_store(url).await?;
        let blank = store.is_blank().await?;
        store.close().await;
        if !blank {
            bail!(
                "目标 PostgreSQL 数据库不为空，拒绝恢复；请先创建一个空数据库 / the target PostgreSQL database is not empty; create an empty database for the restore"
            );
        }
    }

    // Copy, checking each file again as it is written.
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    make_private(&data_dir, 0o700)?;
    for f in &m.files {
        let src = from.join(&f.path);
        let dst = if let Some(rest) = f.path.strip_prefix("lake/") {
            lake_root.join(rest)
        } else if f.path == "audit.key" {
            audit_key_file.clone()
        } else if f.path == "audit-checkpoints.jsonl" {
            checkpoint_file.clone()
        } else if f.path == "secret_key" {
            data_dir.join("secret_key")
        } else if f.path == SQLITE_COPY {
            match &sqlite_file {
                Some(p) => p.clone(),
                None => continue,
            }
        } else {
            // The PostgreSQL dump is read in place.
            continue;
        };
        let (size, sha) = copy_hashed(&src, &dst, None)?;
        if size != f.size || sha != f.sha256 {
            bail!("复制后校验失败 / {} changed while it was restored", f.path);
        }
        if matches!(f.path.as_str(), "audit.key" | "secret_key") {
            make_private(&dst, 0o600)?;
        }
    }
    if postgres {
        let Some(url) = &database_url else { bail!("database_url missing") };
        let env = pg_env(url)?;
        // pg_restore wants --dbname; the name is no secret (the password stays in the environment).
        let dbname = env.iter().find(|(k, _)| *k == "PGDATABASE").map(|(_, v)| v.clone()).unwrap_or_default();
        let status = pg_tool("pg_restore")?
            .envs(env)
            .arg(format!("--dbname={dbname}"))
            .args(["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"])
            .arg(from.join(&m.metadata))
            .status()
            .context("cannot run pg_restore")?;
        if !status.success() {
            bail!("pg_restore 失败 / pg_restore failed ({status})");
        }
    }

    // Open it as a node would: migrate, rebuild the search index, verify the audit chain.
    let r = settings.resolve()?;
    let (index, _) = citydata_server::open_search_index(&r.data_dir.join("search"))?;
    let key =
        citydata_core::audit_seal::AuditKey::open_or_create(&r.audit_key_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let core = crate::cli::open_core(r).await?.with_search(std::sync::Arc::new(index));
    let n = core.reindex().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let report =
        citydata_core::audit::verify_chain(&**core.store(), Some(&key)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    core.store().close().await;
    println!(
        "恢复完成 / restored {} into {}: {} ({}), {} 张表 tables, 搜索索引 search index {n} resources",
        from.display(),
        data_dir.display(),
        m.store,
        m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        m.tables.len()
    );
    match report.first_break {
        None => {
            println!(
                "审计链完整 / audit chain intact: {} entries, {} signed checkpoints",
                report.entries, report.checkpoints
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(b) => {
            println!("审计链损坏 / audit chain BROKEN at entry #{}: {}", b.seq, b.message);
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(sqlite_path("sqlite:///x/y.db"), Some(PathBuf::from("/x/y.db")));
        assert_eq!(sqlite_path("sqlite:y.db?mode=rwc"), Some(PathBuf::from("y.db")));
        assert_eq!(sqlite_path("postgres://h/db"), None);
        let env = pg_env("postgres://u%40x:p%3Aw@db.example:5433/city?sslmode=require").unwrap();
        assert!(env.contains(&("PGUSER", "u@x".into())));
        assert!(env.contains(&("PGPASSWORD", "p:w".into())));
        assert!(env.contains(&("PGPORT", "5433".into())));
        assert!(env.contains(&("PGDATABASE", "city".into())));
        assert!(env.contains(&("PGSSLMODE", "require".into())));
        assert!(local_lake("s3://bucket/x").is_err());
        assert_eq!(local_lake("/data/lake").unwrap(), PathBuf::from("/data/lake"));
    }
}
