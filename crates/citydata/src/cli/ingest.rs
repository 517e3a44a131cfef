//! `citydata ingest`: a file into a resource's table, with a progress bar and the report.

use super::*;

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

pub(super) async fn ingest(settings: Settings, a: IngestArgs) -> anyhow::Result<ExitCode> {
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
            key_range: None,
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
