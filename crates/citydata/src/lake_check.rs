//! The report of `citydata lake check`: one line per resource, one indented line per problem,
//! a summary; exit 1 when any table has a problem.

use citydata_core::lake_check::ResourceCheck;
use std::process::ExitCode;

pub fn report(checks: &[ResourceCheck]) -> ExitCode {
    let mut bad = 0;
    for c in checks {
        let version = c.check.version.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        if c.check.ok() {
            println!("ok      {} {} (版本 / version {version}, {} 个文件 / files)", c.code, c.name, c.check.files);
            continue;
        }
        bad += 1;
        println!("PROBLEM {} {} (版本 / version {version}, {} 个文件 / files)", c.code, c.name, c.check.files);
        for p in &c.check.problems {
            match &p.file {
                Some(f) => println!("        {} {f}: {}", p.kind.as_str(), p.detail),
                None => println!("        {}: {}", p.kind.as_str(), p.detail),
            }
        }
    }
    if bad == 0 {
        println!("{} 个资源的数据表均可读 / all {} tables are readable", checks.len(), checks.len());
        ExitCode::SUCCESS
    } else {
        println!("{bad} 个资源的数据表有问题 / {bad} of {} tables have problems", checks.len());
        ExitCode::from(1)
    }
}
