//! The command line's arguments (clap).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "citydata",
    version,
    about = "城市数据共享交换与开放平台 / city data sharing, exchange and open-data platform"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Args)]
pub(crate) struct Global {
    /// Configuration file (default: ./citydata.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (SQLite file, lake, search index, secret key).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Metadata database URL (sqlite://... or postgres://...).
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) database_url: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the server.
    Serve {
        /// Seed the demo city (泰州), departments and users.
        #[arg(long)]
        demo: bool,
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Create the first platform administrator (password from CITYDATA_ADMIN_PASSWORD or a prompt).
    Init {
        #[arg(long, default_value = "admin")]
        admin: String,
        #[arg(long, default_value = "平台管理员")]
        display_name: String,
        /// The platform department the administrator belongs to (created when missing).
        #[arg(long, default_value = "dsjzx")]
        department: String,
        #[arg(long, default_value = "大数据管理中心")]
        department_name: String,
        /// GB/T 2260 code of the platform department's region.
        #[arg(long, default_value = "321200")]
        region: String,
    },
    /// Show configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Departments (部门).
    Dept {
        #[command(subcommand)]
        command: DeptCommand,
    },
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Measure citydata beside DuckDB and PostgreSQL on the same data (see BENCHMARKS.md).
    Bench {
        /// Tiny sizes and no anchors: checks the bench still runs (CI).
        #[arg(long)]
        quick: bool,
        /// Only these benchmarks (comma-separated names or prefixes).
        #[arg(long)]
        only: Option<String>,
        /// Write the results into this Markdown file (between its bench markers).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keep generated files here (reused across runs) instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(subcommand)]
        command: Option<BenchCommand>,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The resource catalog (信息资源目录) as spreadsheets.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Load a file into a resource's table (数据汇聚), with a progress bar and the report.
    Ingest(IngestArgs),
    /// Demo data.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Data quality (数据质量): reports and rules.
    Quality {
        #[command(subcommand)]
        command: QualityCommand,
    },
    /// 评估考核: every department's indicators and score for a period (JSON on stdout, or an
    /// XLSX workbook with --out).
    Evaluate {
        /// `YYYY-MM`, `YYYY-Qn` or `YYYY`.
        #[arg(long)]
        period: String,
        /// Write the XLSX workbook here instead of JSON on stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Rescore a closed period with the current rules (audited).
        #[arg(long)]
        rescore: bool,
    },
    /// Collection sources (定时采集): list, run now, run history.
    Source {
        #[command(subcommand)]
        command: super::source::SourceCommand,
    },
    /// Table maintenance.
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
    /// The catalog search index.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
    /// Copy the metadata, the lake and the keys into a new directory while servers run (备份).
    Backup {
        /// A new or empty directory.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Restore a backup into an empty data directory (and, on PostgreSQL, an empty database).
    Restore {
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// Sharing requests (共享申请), acting as a user.
    Request {
        /// The user the command acts as (the operator on this host is trusted, as for `token create`).
        #[arg(long = "as", value_name = "USERNAME")]
        user: String,
        #[command(subcommand)]
        command: RequestCommand,
    },
    /// Grants (授权), acting as a user.
    Grant {
        #[arg(long = "as", value_name = "USERNAME")]
        user: String,
        #[command(subcommand)]
        command: GrantCommand,
    },
    /// 核验: check records under a verification grant (answers only, never data).
    Verify(super::verify::VerifyArgs),
}

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// A mixed workload at a fixed rate against a server process; errors, latency percentiles
    /// per window and the server's memory over time (see BENCHMARKS.md).
    Soak(crate::soak::SoakArgs),
}

#[derive(Subcommand)]
pub(crate) enum RequestCommand {
    /// File a request for a resource (UUID, code or slug).
    Create {
        #[arg(long)]
        resource: String,
        /// 用途
        #[arg(long)]
        purpose: String,
        /// 依据
        #[arg(long, default_value = "")]
        basis: String,
        /// 使用场景
        #[arg(long, default_value = "")]
        scenario: String,
        #[arg(long, default_value = "")]
        contact: String,
        /// Items wanted, comma-separated; omitted: every item.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// Days the data is needed (1–3650, default 365).
        #[arg(long)]
        period_days: Option<i64>,
        /// Public applicants: accept the security commitment (安全承诺书).
        #[arg(long)]
        accept_commitment: bool,
        /// `verify`: ask for a verification grant (核验: answers only, no rows).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Requests this user filed or must answer.
    List {
        /// pending, approved, rejected or withdrawn.
        #[arg(long)]
        state: Option<String>,
        /// Only pending requests past their response deadline.
        #[arg(long)]
        overdue: bool,
    },
    /// Approve a pending request, optionally narrowed.
    Approve {
        id: String,
        /// A subset of the requested items, comma-separated.
        #[arg(long, value_delimiter = ',')]
        fields: Option<Vec<String>>,
        #[arg(long)]
        row_filter: Option<String>,
        /// field=mask, repeatable (e.g. --mask sfzh=id_card).
        #[arg(long = "mask", value_name = "FIELD=MASK")]
        masks: Vec<String>,
        /// Expiry as a date (2027-12-31) or RFC 3339 time; no later than the requested period.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Reject a pending request with a reason.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw one's own pending request.
    Withdraw { id: String },
}

#[derive(Subcommand)]
pub(crate) enum GrantCommand {
    /// Grants on this user's departments' resources, or to them.
    List,
    /// Revoke a grant.
    Revoke { id: String },
    /// Ask the provider to renew a grant for another period (a request, answered as usual).
    Renew {
        id: String,
        /// Days beyond the current expiry.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Default: the grant's purpose.
        #[arg(long)]
        purpose: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum CatalogCommand {
    /// Write the whole catalog to a workbook (资源 and 信息项 sheets) or a CSV.
    Export {
        /// Output file; its extension picks the format unless --format is given.
        #[arg(long, short)]
        out: PathBuf,
        /// xlsx or csv.
        #[arg(long)]
        format: Option<String>,
    },
    /// Import a catalog file; nothing is imported when any row fails, unless --partial.
    Import {
        file: PathBuf,
        #[arg(long)]
        partial: bool,
        /// xlsx or csv (detected when absent).
        #[arg(long)]
        format: Option<String>,
    },
}

#[derive(Args)]
pub(crate) struct IngestArgs {
    /// The file (CSV/TSV, XLSX, JSON, NDJSON, Parquet; .gz allowed).
    pub(crate) file: PathBuf,
    /// The resource: code (e.g. 101/000001), slug or id.
    #[arg(long)]
    pub(crate) resource: String,
    /// append, replace, upsert or delete.
    #[arg(long, default_value = "append")]
    pub(crate) mode: String,
    /// quarantine, reject or accept.
    #[arg(long, default_value = "quarantine")]
    pub(crate) policy: String,
    /// auto, utf-8 or gb18030.
    #[arg(long, default_value = "auto")]
    pub(crate) encoding: String,
    /// csv, tsv, xlsx, json, ndjson, parquet (default: from the file name).
    #[arg(long)]
    pub(crate) format: Option<String>,
    #[arg(long)]
    pub(crate) delimiter: Option<String>,
    #[arg(long)]
    pub(crate) sheet: Option<String>,
    /// Ignore columns that match no item.
    #[arg(long)]
    pub(crate) ignore_extra: bool,
    /// Apply this ingest at most once.
    #[arg(long)]
    pub(crate) idempotency_key: Option<String>,
    /// With --mode delete or replace: erase the removed rows for good (擦除: old files, change
    /// feed and log history removed; older versions answer version_erased).
    #[arg(long)]
    pub(crate) erase: bool,
    /// Send to a running server instead of writing the data directory.
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// API token for --server (or CITYDATA_TOKEN).
    #[arg(long, env = "CITYDATA_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Act as this user when writing the data directory directly (default: the operator).
    #[arg(long = "as", value_name = "USER")]
    pub(crate) as_user: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum DemoCommand {
    /// Write a realistic register with Chinese column titles.
    Generate {
        /// population or enterprise.
        register: String,
        #[arg(long, default_value_t = 10_000)]
        rows: u64,
        #[arg(long)]
        out: PathBuf,
        /// utf-8 or gb18030.
        #[arg(long, default_value = "utf-8")]
        encoding: String,
        /// Fraction of rows with a deliberate defect.
        #[arg(long, default_value_t = 0.01)]
        defects: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand)]
pub(crate) enum QualityCommand {
    /// The quality report of a resource's table version (JSON on stdout, or an XLSX file).
    Report {
        /// Resource code, UUID or slug.
        resource: String,
        /// A table version (default: the newest with a report).
        #[arg(long)]
        version: Option<i64>,
        /// `json` (default) or `xlsx`.
        #[arg(long, default_value = "json")]
        format: String,
        /// Where to write the XLSX (default: quality-<code>.xlsx).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Quality rules.
    Rules {
        #[command(subcommand)]
        command: QualityRulesCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum QualityRulesCommand {
    /// Replace the rules of the resources a CSV names: `resource,rule,severity` (or
    /// 资源代码,规则,严重程度), one rule a line; all or nothing.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
pub(crate) enum LakeCommand {
    /// Delete files no table version references (left by failed writes) and versions older
    /// than the retention.
    Vacuum {
        #[arg(long, default_value_t = 168)]
        retention_hours: u64,
    },
    /// Compact tables with many small files (Delta optimize): rows, versions and the change
    /// feed stay as they were. The server does this every 10 minutes on its own.
    Compact {
        /// Compact a table once it has this many small files.
        #[arg(long, default_value_t = 32)]
        min_small_files: usize,
    },
    /// 擦除历史: make rows that earlier deletes or replaces removed unrecoverable (older
    /// versions, the change feed and files that hold them go; audited with counts).
    Erase {
        /// The resource (code, slug or id).
        resource: String,
    },
    /// Check that tables can be read: the Delta log loads, and every data file of the current
    /// version exists, has the logged size and a readable Parquet footer. Exit 1 on any problem.
    Check {
        /// One resource (code, slug or id); every resource when omitted.
        resource: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum SearchCommand {
    /// Rebuild the search index from the database (stop the server first, or it will rebuild
    /// the index itself at start when the directory is removed).
    Reindex,
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show,
}

#[derive(Subcommand)]
pub(crate) enum DeptCommand {
    /// Add a department.
    Add {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// GB/T 2260 region code, six digits.
        #[arg(long)]
        region: String,
        /// city or district.
        #[arg(long, default_value = "city")]
        level: String,
        #[arg(long)]
        parent: Option<String>,
    },
    /// List departments.
    List,
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user (password from CITYDATA_USER_PASSWORD or a prompt).
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        /// Department code of the user's role.
        #[arg(long)]
        department: String,
        /// admin, dept_admin, steward or analyst.
        #[arg(long)]
        role: String,
    },
    /// List users.
    List,
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create an API token for a user; the token is printed once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// Lifetime: 90d, 12w, 1y or a number of days.
        #[arg(long, conflicts_with = "expires_in_days")]
        expires: Option<String>,
        /// Lifetime in days.
        #[arg(long)]
        expires_in_days: Option<i64>,
        /// Scopes, comma-separated (catalog:read, catalog:write, data:read, data:write,
        /// requests, webhooks, admin); none: every scope.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// A resource (id or code) the token is limited to; repeat for several.
        #[arg(long = "resource")]
        resources: Vec<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk the hash chain; exit 1 naming the first broken entry.
    Verify,
}
