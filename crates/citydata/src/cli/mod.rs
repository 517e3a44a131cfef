//! Command-line parsing and the commands.

use anyhow::{Context, bail};
use citydata_core::accounts::{MembershipInput, NewDepartmentInput, NewUserInput};
use citydata_core::{Core, CoreError, RequestMeta};
use citydata_server::{Application, Overrides, ResolvedSettings, Settings, open_store, shutdown_signal, telemetry};
use clap::Parser;
use futures::TryStreamExt;
use std::process::ExitCode;

mod args;
mod ingest;
mod sharing;

use args::*;
use ingest::ingest;
mod evaluate;
mod quality;
mod source;
mod verify;
use sharing::{grants, parse_days, requests};

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
        Command::Token {
            command: TokenCommand::Create { user, name, expires, expires_in_days, scopes, resources },
        } => {
            let days = match expires_in_days {
                Some(d) => Some(d),
                None => expires.as_deref().map(parse_days).transpose()?,
            };
            let core = open_core(settings.resolve()?).await?;
            let p = core.cli_principal(&user).await.map_err(user_error)?;
            let req = citydata_core::tokens::TokenRequest {
                name,
                scopes: (!scopes.is_empty()).then_some(scopes),
                resources: (!resources.is_empty()).then_some(resources),
                expires_in_days: days,
            };
            let t = core.create_scoped_token(&cli_meta(), &p, &req).await.map_err(user_error)?;
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
        Command::Lake { command: LakeCommand::Compact { min_small_files } } => {
            let core = open_core(settings.resolve()?).await?;
            let (tables, files) = core.compact_lake(min_small_files).await.map_err(user_error)?;
            println!("已合并 {tables} 张表的 {files} 个小文件 / compacted {files} small files in {tables} tables");
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
        Command::Quality { command } => quality::run(open_core(settings.resolve()?).await?, command).await,
        Command::Evaluate { period, out, rescore } => {
            evaluate::run(open_core(settings.resolve()?).await?, &period, out, rescore).await
        }
        Command::Source { command } => source::run(open_core(settings.resolve()?).await?, command).await,
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
        Command::Verify(a) => verify::run(settings, a).await,
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
    // Before the listener is bound: a SIGTERM that arrives as soon as the port answers stops the
    // server gracefully instead of killing it.
    let stop = shutdown_signal();
    let app = Application::build(resolved).await?;
    let addr = app.local_addr();
    println!("citydata 已启动 / listening on http://{addr}");
    if demo {
        println!("演示账号 / demo logins (password: {}):", citydata_core::demo::DEMO_PASSWORD);
        for (u, name, dept, role) in citydata_core::demo::USERS {
            println!("  {u:<14} {name} ({dept}, {role})");
        }
    }
    app.run_until_stopped(stop).await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn open_core(r: ResolvedSettings) -> anyhow::Result<Core> {
    let store = open_store(&r.database_url).await?;
    store.migrate().await.context("database migration failed")?;
    let lake = r.open_lake()?;
    let key = citydata_core::audit_seal::AuditKey::open_or_create(&r.audit_key_file).map_err(user_error)?;
    // The server's configuration (pseudonym key, calendar, weights, address rule), not defaults.
    Ok(Core::new(store, citydata_server::core_config(&r)?)
        .with_lake(lake, r.data_dir.join("tmp"))
        .with_audit_key(std::sync::Arc::new(key)))
}

/// A URL path segment: everything but RFC 3986's unreserved characters is percent-encoded, so a
/// resource code such as `101/000001` stays one segment.
pub(crate) fn urlencode(s: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
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
        assert_eq!(super::sharing::parse_days("90d").unwrap(), 90);
        assert_eq!(super::sharing::parse_days("2w").unwrap(), 14);
        assert_eq!(super::sharing::parse_days("1y").unwrap(), 365);
        assert_eq!(super::sharing::parse_days("30").unwrap(), 30);
        assert!(super::sharing::parse_days("soon").is_err());
    }
}
