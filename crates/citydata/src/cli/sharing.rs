//! `citydata request` and `citydata grant`: the sharing workflow from the terminal.

use super::*;

/// `90d`, `12w`, `1y` or a bare number of days.
pub(super) fn parse_days(s: &str) -> anyhow::Result<i64> {
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

pub(super) async fn requests(settings: Settings, user: &str, command: RequestCommand) -> anyhow::Result<ExitCode> {
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
            kind,
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
                kind,
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

pub(super) async fn grants(settings: Settings, user: &str, command: GrantCommand) -> anyhow::Result<ExitCode> {
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
