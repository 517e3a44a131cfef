//! Command-line parsing and the commands.

use anyhow::{Context, bail};
use citydata_core::accounts::{MembershipInput, NewDepartmentInput, NewUserInput};
use citydata_core::{Core, CoreConfig, CoreError, RequestMeta};
use citydata_server::{Application, Overrides, ResolvedSettings, Settings, open_store, shutdown_signal, telemetry};
use clap::{Args, Parser, Subcommand};
use futures::TryStreamExt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "citydata",
    version,
    about = "城市数据共享交换与开放平台 / city data sharing, exchange and open-data platform"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Configuration file (default: ./citydata.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (SQLite file, lake, search index, secret key).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Metadata database URL (sqlite://... or postgres://...).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
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
}

#[derive(Subcommand)]
enum BenchCommand {
    /// A mixed workload at a fixed rate against a server process; errors, latency percentiles
    /// per window and the server's memory over time (see BENCHMARKS.md).
    Soak(crate::soak::SoakArgs),
}

#[derive(Subcommand)]
enum RequestCommand {
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
enum GrantCommand {
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
enum CatalogCommand {
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
struct IngestArgs {
    /// The file (CSV/TSV, XLSX, JSON, NDJSON, Parquet; .gz allowed).
    file: PathBuf,
    /// The resource: code (e.g. 101/000001), slug or id.
    #[arg(long)]
    resource: String,
    /// append, replace, upsert or delete.
    #[arg(long, default_value = "append")]
    mode: String,
    /// quarantine, reject or accept.
    #[arg(long, default_value = "quarantine")]
    policy: String,
    /// auto, utf-8 or gb18030.
    #[arg(long, default_value = "auto")]
    encoding: String,
    /// csv, tsv, xlsx, json, ndjson, parquet (default: from the file name).
    #[arg(long)]
    format: Option<String>,
    #[arg(long)]
    delimiter: Option<String>,
    #[arg(long)]
    sheet: Option<String>,
    /// Ignore columns that match no item.
    #[arg(long)]
    ignore_extra: bool,
    /// Apply this ingest at most once.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// With --mode delete or replace: erase the removed rows for good (擦除: old files, change
    /// feed and log history removed; older versions answer version_erased).
    #[arg(long)]
    erase: bool,
    /// Send to a running server instead of writing the data directory.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// API token for --server (or CITYDATA_TOKEN).
    #[arg(long, env = "CITYDATA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Act as this user when writing the data directory directly (default: the operator).
    #[arg(long = "as", value_name = "USER")]
    as_user: Option<String>,
}

#[derive(Subcommand)]
enum DemoCommand {
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
enum LakeCommand {
    /// Delete files no table version references (left by failed writes) and versions older
    /// than the retention.
    Vacuum {
        #[arg(long, default_value_t = 168)]
        retention_hours: u64,
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
enum SearchCommand {
    /// Rebuild the search index from the database (stop the server first, or it will rebuild
    /// the index itself at start when the directory is removed).
    Reindex,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show,
}

#[derive(Subcommand)]
enum DeptCommand {
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
enum UserCommand {
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
enum TokenCommand {
    /// Create an API token for a user; the token is printed once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// Lifetime: 90d, 12w, 1y or a number of days.
        #[arg(long)]
        expires: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; exit 1 naming the first broken entry.
    Verify,
}

pub async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let demo = matches!(cli.command, Command::Serve { demo: true, .. }).then_some(true);
    let listen = match &cli.command {
        Command::Serve { listen, .. } => *listen,
        _ => None,
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        demo,
    };
    let settings = Settings::load(cli.global.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Serve { .. } => serve(settings).await,
        Command::Config { command: ConfigCommand::Show } => {
            print!("{}", settings.resolve()?.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let r = settings.resolve()?;
            let store = open_store(&r.database_url).await?;
            store.migrate().await.context("migration failed")?;
            println!("迁移完成 / migrations applied ({})", store.backend());
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { admin, display_name, department, department_name, region } => {
            let core = open_core(settings.resolve()?).await?;
            let meta = cli_meta();
            let code = citydata_domain::dept::DeptCode::parse(&department).map_err(|e| anyhow::anyhow!("{e}"))?;
            if core.store().get_department(&code).await?.is_none() {
                let input = NewDepartmentInput {
                    code: department.clone(),
                    name: department_name,
                    region_code: region,
                    level: "city".into(),
                    parent: None,
                };
                core.bootstrap_department(&meta, "cli:init", &input).await.map_err(user_error)?;
            }
            let password =
                read_password("CITYDATA_ADMIN_PASSWORD", &format!("管理员 {admin} 的密码 / password for {admin}: "))?;
            let input = NewUserInput {
                username: admin.clone(),
                display_name,
                password,
                memberships: vec![MembershipInput { department, role: "admin".into() }],
            };
            let u = core.bootstrap_user(&meta, "cli:init", &input).await.map_err(user_error)?;
            println!("已创建平台管理员 / created platform administrator: {}", u.username);
            Ok(ExitCode::SUCCESS)
        }
        Command::Dept { command } => {
            let core = open_core(settings.resolve()?).await?;
            match command {
                DeptCommand::Add { code, name, region, level, parent } => {
                    let input = NewDepartmentInput { code, name, region_code: region, level, parent };
                    let d = core.bootstrap_department(&cli_meta(), "cli", &input).await.map_err(user_error)?;
                    println!("已创建部门 / created department {} {}", d.code, d.name.as_str());
                }
                DeptCommand::List => {
                    for d in core.list_departments().await.map_err(user_error)? {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            d.code,
                            d.name.as_str(),
                            d.region,
                            d.level.as_str(),
                            d.parent.map(|p| p.to_string()).unwrap_or_default()
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command } => {
            let core = open_core(settings.resolve()?).await?;
            match command {
                UserCommand::Add { username, display_name, department, role } => {
                    let password = read_password(
                        "CITYDATA_USER_PASSWORD",
                        &format!("{username} 的密码 / password for {username}: "),
                    )?;
                    let input = NewUserInput {
                        username,
                        display_name,
                        password,
                        memberships: vec![MembershipInput { department, role }],
                    };
                    let u = core.bootstrap_user(&cli_meta(), "cli", &input).await.map_err(user_error)?;
                    println!("已创建用户 / created user {}", u.username);
                }
                UserCommand::List => {
                    for u in core.store().list_users().await? {
                        let roles: Vec<String> =
                            u.memberships.iter().map(|m| format!("{}:{}", m.department, m.role.as_str())).collect();
                        println!("{}\t{}\t{}", u.username, u.display_name, roles.join(","));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command: TokenCommand::Create { user, name, expires } } => {
            let days = expires.as_deref().map(parse_days).transpose()?;
            let core = open_core(settings.resolve()?).await?;
            let p = core.cli_principal(&user).await.map_err(user_error)?;
            let t = core.create_token(&cli_meta(), &p, &name, days).await.map_err(user_error)?;
            eprintln!("令牌只显示这一次，请妥善保存 / the token is shown only once:");
            println!("{}", t.token);
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog { command } => catalog(settings, command).await,
        Command::Ingest(args) => ingest(settings, args).await,
        Command::Demo { command: DemoCommand::Generate { register, rows, out, encoding, defects, seed } } => {
            let reg = citydata_core::demo::generate::Register::parse(&register)
                .ok_or_else(|| anyhow::anyhow!("register must be population or enterprise, got {register}"))?;
            let gb = match encoding.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
                "utf8" => false,
                "gb18030" | "gbk" => true,
                other => bail!("encoding must be utf-8 or gb18030, got {other}"),
            };
            let file = std::fs::File::create(&out).with_context(|| format!("cannot write {}", out.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            let bad = citydata_core::demo::generate::generate(reg, rows, defects, seed, gb, &mut w)?;
            std::io::Write::flush(&mut w)?;
            println!(
                "已生成 {rows} 行（其中 {bad} 行有意出错）/ wrote {rows} rows ({bad} with deliberate defects) to {}",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Lake { command: LakeCommand::Vacuum { retention_hours } } => {
            let core = open_core(settings.resolve()?).await?;
            let n = core.vacuum_lake(retention_hours).await.map_err(user_error)?;
            println!("已清理 {n} 个文件 / removed {n} files");
            Ok(ExitCode::SUCCESS)
        }
        Command::Lake { command: LakeCommand::Erase { resource } } => {
            let core = open_core(settings.resolve()?).await?;
            let meta = citydata_core::RequestMeta::new(Some("cli-lake-erase".into()), None);
            let operator = citydata_core::auth::operator("cli");
            let r = core.erase_history(&meta, &operator, &resource).await.map_err(user_error)?;
            println!(
                "已擦除：删除数据文件 {}、变更文件 {}、日志文件 {}；早于版本 {} 的历史不可再读 / erased: {} data files, {} change files, {} log files; versions before {} are gone",
                r.files_vacuumed,
                r.change_files_removed,
                r.log_files_removed,
                r.erased_before.unwrap_or(0),
                r.files_vacuumed,
                r.change_files_removed,
                r.log_files_removed,
                r.erased_before.unwrap_or(0)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Lake { command: LakeCommand::Check { resource } } => {
            let core = open_core(settings.resolve()?).await?;
            let operator = citydata_core::auth::operator("cli");
            let checks = core.check_lake(&operator, resource.as_deref()).await.map_err(user_error)?;
            Ok(crate::lake_check::report(&checks))
        }
        Command::Search { command: SearchCommand::Reindex } => {
            let r = settings.resolve()?;
            let (index, _) = citydata_server::open_search_index(&r.data_dir.join("search"))?;
            let core = open_core(r).await?.with_search(std::sync::Arc::new(index));
            let n = core.reindex().await.map_err(user_error)?;
            println!("搜索索引已重建 / search index rebuilt: {n} resources");
            Ok(ExitCode::SUCCESS)
        }
        Command::Request { user, command } => requests(settings, &user, command).await,
        Command::Grant { user, command } => grants(settings, &user, command).await,
        Command::Bench { command: Some(BenchCommand::Soak(args)), .. } => crate::soak::run(args).await,
        Command::Backup { to } => crate::backup::backup(settings.resolve()?, &to).await,
        Command::Restore { from } => crate::backup::restore(settings, &from).await,
        Command::Bench { quick, only, out, dir, command: None } => {
            crate::bench::run(crate::bench::BenchArgs { quick, only, out, dir }).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let r = settings.resolve()?;
            let store = open_store(&r.database_url).await?;
            let key = citydata_core::audit_seal::AuditKey::open_or_create(&r.audit_key_file).map_err(user_error)?;
            let report = citydata_core::audit::verify_chain(&*store, Some(&key)).await.map_err(user_error)?;
            if report.ok {
                // Vouch for what was just verified.
                citydata_core::audit_seal::seal_head(&*store, &key).await.map_err(user_error)?;
            }
            store.close().await;
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
    }
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let resolved = settings.resolve()?;
    telemetry::init_logging(resolved.settings.log_format);
    let demo = resolved.settings.demo;
    let app = Application::build(resolved).await?;
    let addr = app.local_addr();
    println!("citydata 已启动 / listening on http://{addr}");
    if demo {
        println!("演示账号 / demo logins (password: {}):", citydata_core::demo::DEMO_PASSWORD);
        for (u, name, dept, role) in citydata_core::demo::USERS {
            println!("  {u:<14} {name} ({dept}, {role})");
        }
    }
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn open_core(r: ResolvedSettings) -> anyhow::Result<Core> {
    let store = open_store(&r.database_url).await?;
    store.migrate().await.context("database migration failed")?;
    let lake = citydata_lake::table::Lake::new(&r.lake_url)
        .with_context(|| format!("cannot use the lake at {}", r.lake_url))?;
    let key = citydata_core::audit_seal::AuditKey::open_or_create(&r.audit_key_file).map_err(user_error)?;
    Ok(Core::new(store, CoreConfig::default())
        .with_lake(lake, r.data_dir.join("tmp"))
        .with_audit_key(std::sync::Arc::new(key)))
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{bar:40.cyan/blue} {bytes}/{total_bytes} {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
}

fn print_report(v: &serde_json::Value) {
    let r = &v["report"];
    println!("导入 / ingest {}: {}", v["id"].as_str().unwrap_or(""), v["state"].as_str().unwrap_or(""));
    println!(
        "  读取 rows read {}，写入 committed {}，隔离 quarantined {}，表版本 table version {}",
        r["rows_read"], r["rows_committed"], r["rows_quarantined"], r["table_version"]
    );
    println!(
        "  用时 {} ms，{:.0} 行/秒 rows/s，编码 encoding {}",
        r["duration_ms"],
        r["rows_per_sec"].as_f64().unwrap_or(0.0),
        r["encoding"].as_str().unwrap_or("-")
    );
    if let Some(fs) = r["failures"].as_array() {
        for f in fs {
            println!(
                "  {}（{}）{}: {}",
                f["title"].as_str().unwrap_or("-"),
                f["item"].as_str().unwrap_or("-"),
                f["rule"].as_str().unwrap_or(""),
                f["count"]
            );
        }
    }
    if r["already_applied"].as_bool() == Some(true) {
        println!("  此 Idempotency-Key 已导入过，本次未写入 / this key was applied before; nothing written");
    }
}

async fn ingest(settings: Settings, a: IngestArgs) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?.len();
    let pb = progress_bar(size);
    let file_name = a.file.file_name().map(|n| n.to_string_lossy().to_string());
    let view = if let Some(server) = &a.server {
        let token = a.token.clone().ok_or_else(|| anyhow::anyhow!("--server needs --token (or CITYDATA_TOKEN)"))?;
        let file = tokio::fs::File::open(&a.file).await?;
        let bar = pb.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
            .inspect_ok(move |chunk| bar.inc(chunk.len() as u64));
        let mut url = reqwest::Url::parse(&format!(
            "{}/api/v1/resources/{}/data",
            server.trim_end_matches('/'),
            urlencode(&a.resource)
        ))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("mode", &a.mode).append_pair("policy", &a.policy).append_pair("encoding", &a.encoding);
            let fmt = a
                .format
                .clone()
                .or_else(|| file_name.as_deref().and_then(citydata_lake::read::Format::name_from_file_name));
            if let Some(f) = fmt {
                q.append_pair("format", &f);
            }
            if let Some(d) = &a.delimiter {
                q.append_pair("delimiter", d);
            }
            if let Some(s) = &a.sheet {
                q.append_pair("sheet", s);
            }
            if a.ignore_extra {
                q.append_pair("ignore_extra", "true");
            }
            if a.erase {
                q.append_pair("erase", "true");
            }
        }
        let mut req = reqwest::Client::new().post(url).bearer_auth(token).body(reqwest::Body::wrap_stream(stream));
        if let Some(k) = &a.idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.context("cannot reach the server")?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        pb.finish_and_clear();
        if !status.is_success() {
            eprintln!("错误 / error ({status}): {}", body["error"]["message"].as_str().unwrap_or(""));
            if let Some(i) = body["error"]["details"].get("ingest") {
                print_report(i);
            }
            return Ok(ExitCode::from(1));
        }
        body
    } else {
        let core = open_core(settings.resolve()?).await?;
        let principal = match &a.as_user {
            Some(u) => core.cli_principal(u).await.map_err(user_error)?,
            None => citydata_core::auth::operator("cli"),
        };
        let params = citydata_core::ingest::IngestParams {
            mode: Some(a.mode.clone()),
            format: a.format.clone(),
            encoding: Some(a.encoding.clone()),
            policy: Some(a.policy.clone()),
            delimiter: a.delimiter.clone(),
            sheet: a.sheet.clone(),
            header: None,
            ignore_extra: a.ignore_extra,
            idempotency_key: a.idempotency_key.clone(),
            erase: a.erase,
        };
        let bar = pb.clone();
        let progress: citydata_lake::ingest::Progress = std::sync::Arc::new(move |bytes, rows| {
            bar.set_position(bytes.min(size));
            bar.set_message(format!("{rows} 行 rows"));
        });
        let result = core
            .ingest_data(
                &cli_meta(),
                &principal,
                &a.resource,
                &params,
                citydata_core::ingest::IngestBody::File(a.file.clone()),
                Some(progress),
            )
            .await;
        pb.finish_and_clear();
        let (rec, _) = result.map_err(user_error)?;
        citydata_core::ingest::ingest_view(&rec)
    };
    print_report(&view);
    Ok(if view["state"] == "rejected" { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn cli_meta() -> RequestMeta {
    RequestMeta::new(Some(format!("cli-{}", uuid_like())), Some("cli".into()))
}

fn uuid_like() -> String {
    format!("{:x}", std::process::id()) + &format!("{:x}", chrono::Utc::now().timestamp_micros())
}

/// Turn a use-case error into a message for the terminal.
fn user_error(e: CoreError) -> anyhow::Error {
    match e {
        CoreError::Validation(v) => anyhow::anyhow!("输入有误 / invalid input: {v}"),
        other => anyhow::anyhow!("{other}"),
    }
}

fn read_password(env: &str, prompt: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(env)
        && !p.is_empty()
    {
        return Ok(p);
    }
    let p =
        rpassword::prompt_password(prompt).with_context(|| format!("no terminal to ask for a password: set {env}"))?;
    let again = rpassword::prompt_password("再输入一次 / again: ")?;
    if p != again {
        bail!("两次输入的密码不一致 / passwords do not match");
    }
    Ok(p)
}

/// `90d`, `12w`, `1y` or a bare number of days.
fn parse_days(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('d') => (&s[..s.len() - 1], 1),
        Some('w') => (&s[..s.len() - 1], 7),
        Some('y') => (&s[..s.len() - 1], 365),
        _ => (s, 1),
    };
    let n: i64 = num.parse().with_context(|| format!("--expires: expected e.g. 90d, 12w or 1y, got {s}"))?;
    Ok(n * mult)
}

fn print_request(r: &citydata_store::RequestRecord) {
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}",
        r.id,
        r.state,
        r.resource_id,
        r.requester_department.as_deref().unwrap_or("-"),
        r.due_at.format("%Y-%m-%d %H:%M"),
        r.reason.as_deref().unwrap_or(""),
    );
}

/// `2027-12-31` (end of that day, UTC) or an RFC 3339 time.
fn parse_expiry(s: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("--expires: expected a date like 2027-12-31 or an RFC 3339 time, got {s}"))?;
    Ok(d.and_hms_opt(23, 59, 59).expect("valid time").and_utc())
}

async fn requests(settings: Settings, user: &str, command: RequestCommand) -> anyhow::Result<ExitCode> {
    use citydata_core::requests::{ApproveInput, NewRequestInput};
    let core = open_core(settings.resolve()?).await?;
    let p = core.cli_principal(user).await.map_err(user_error)?;
    let meta = cli_meta();
    match command {
        RequestCommand::Create {
            resource,
            purpose,
            basis,
            scenario,
            contact,
            fields,
            period_days,
            accept_commitment,
        } => {
            let input = NewRequestInput {
                resource_id: resource,
                fields,
                purpose,
                basis,
                scenario,
                contact,
                period_days,
                accept_commitment,
                commitment_sha256: None,
            };
            let r = core.create_request(&meta, &p, &input).await.map_err(user_error)?;
            print_request(&r);
        }
        RequestCommand::List { state, overdue } => {
            for r in core.list_requests(&p, overdue, state.as_deref()).await.map_err(user_error)? {
                print_request(&r);
            }
        }
        RequestCommand::Approve { id, fields, row_filter, masks, expires } => {
            let mut m = std::collections::BTreeMap::new();
            for spec in masks {
                let (f, k) =
                    spec.split_once('=').ok_or_else(|| anyhow::anyhow!("--mask: expected FIELD=MASK, got {spec}"))?;
                m.insert(f.trim().to_string(), k.trim().to_string());
            }
            let expires_at = expires.as_deref().map(parse_expiry).transpose()?;
            let input = ApproveInput { fields, row_filter, masks: m, expires_at };
            let r = core.approve_request(&meta, &p, &id, &input).await.map_err(user_error)?;
            print_request(&r);
        }
        RequestCommand::Reject { id, reason } => {
            let r = core.reject_request(&meta, &p, &id, &reason).await.map_err(user_error)?;
            print_request(&r);
        }
        RequestCommand::Withdraw { id } => {
            let r = core.withdraw_request(&meta, &p, &id).await.map_err(user_error)?;
            print_request(&r);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn grants(settings: Settings, user: &str, command: GrantCommand) -> anyhow::Result<ExitCode> {
    let core = open_core(settings.resolve()?).await?;
    let p = core.cli_principal(user).await.map_err(user_error)?;
    match command {
        GrantCommand::List => {
            for g in core.list_grants(&p).await.map_err(user_error)? {
                let state = if g.revoked_at.is_some() { "revoked" } else { "active" };
                println!(
                    "{}\t{}\t{}\t{}:{}\t{}\t{}",
                    g.id,
                    state,
                    g.resource_id,
                    g.grantee_kind,
                    g.grantee,
                    if g.fields.is_empty() { "*".to_string() } else { g.fields.join(",") },
                    g.expires_at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "-".into()),
                );
            }
        }
        GrantCommand::Revoke { id } => {
            let g = core.revoke_grant(&cli_meta(), &p, &id).await.map_err(user_error)?;
            println!("已撤销授权 / revoked grant {}", g.id);
        }
        GrantCommand::Renew { id, days, purpose } => {
            let input = citydata_core::requests::RenewInput { period_days: Some(days), purpose, ..Default::default() };
            let r = core.renew_grant(&cli_meta(), &p, &id, &input).await.map_err(user_error)?;
            print_request(&r);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn catalog(settings: Settings, command: CatalogCommand) -> anyhow::Result<ExitCode> {
    use citydata_core::catalog_io::CatalogFormat;
    let core = open_core(settings.resolve()?).await?;
    let operator = citydata_core::auth::operator("cli");
    match command {
        CatalogCommand::Export { out, format } => {
            let format = match format {
                Some(f) => CatalogFormat::parse(&f).map_err(user_error)?,
                None if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) => CatalogFormat::Csv,
                None => CatalogFormat::Xlsx,
            };
            let bytes = core.export_catalog(Some(&operator), format, true).await.map_err(user_error)?;
            std::fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
            println!("目录已导出 / catalog written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Import { file, partial, format } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let format = format.as_deref().map(CatalogFormat::parse).transpose().map_err(user_error)?;
            let report =
                core.import_catalog(&cli_meta(), &operator, &bytes, format, partial).await.map_err(user_error)?;
            for issue in &report.issues {
                eprintln!("{issue}");
            }
            println!(
                "新建 {} 条，更新 {} 条，跳过 {} 条 / created {}, updated {}, skipped {}",
                report.created, report.updated, report.skipped, report.created, report.updated, report.skipped
            );
            if report.issues.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                if !partial {
                    eprintln!(
                        "有问题的文件未导入任何内容；修正后重试，或用 --partial 导入无误的行 / nothing was imported; fix the file or use --partial"
                    );
                }
                Ok(ExitCode::from(1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_expiry() {
        assert_eq!(super::parse_days("90d").unwrap(), 90);
        assert_eq!(super::parse_days("2w").unwrap(), 14);
        assert_eq!(super::parse_days("1y").unwrap(), 365);
        assert_eq!(super::parse_days("30").unwrap(), 30);
        assert!(super::parse_days("soon").is_err());
    }
}
