//! Realistic demo registers for 泰州: people with valid identity numbers consistent with birth
//! date and sex and a Taizhou address code, mobiles, addresses in the six districts; enterprises
//! with valid unified social credit codes. A share of rows carries deliberate defects.

use citydata_domain::identifiers::{USCC_ALPHABET, id_check_char, org_check_char, uscc_check_char};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;

/// Which register to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    Population,
    Enterprise,
}

impl Register {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "population" | "人口" => Some(Self::Population),
            "enterprise" | "企业" => Some(Self::Enterprise),
            _ => None,
        }
    }
}

const DISTRICTS: &[(&str, &str, &[&str])] = &[
    ("321202", "海陵区", &["海陵南路", "青年路", "鼓楼路", "东进路", "坡子街", "五一路"]),
    ("321203", "高港区", &["口岸街道", "通江路", "港城路", "永安路"]),
    ("321204", "姜堰区", &["人民路", "三水大道", "罗塘街道", "天目山路"]),
    ("321281", "兴化市", &["英武路", "长安路", "五里路", "牌楼路"]),
    ("321282", "靖江市", &["骥江路", "人民路", "江平路", "阳光大道"]),
    ("321283", "泰兴市", &["国庆路", "济川路", "文昌路", "银杏路"]),
];

const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";
const GIVEN: &str = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文辉鹏宇浩然子涵欣怡梓轩雨桐博文一诺思远晨阳佳琪俊杰海燕春梅晓东";
const ETHNIC: &[(&str, u32)] =
    &[("汉族", 970), ("回族", 10), ("满族", 6), ("蒙古族", 4), ("壮族", 4), ("苗族", 3), ("土家族", 3)];
const MARITAL: &[&str] = &["未婚", "已婚", "已婚", "已婚", "离婚", "丧偶"];
const EDUCATION: &[&str] = &["小学", "初中", "初中", "高中", "中专", "大专", "本科", "本科", "研究生"];
const INDUSTRY: &[(&str, &str)] = &[
    ("制造业", "机械制造"),
    ("制造业", "医药"),
    ("批发和零售业", "商贸"),
    ("建筑业", "建设工程"),
    ("信息传输、软件和信息技术服务业", "信息科技"),
    ("交通运输、仓储和邮政业", "物流"),
    ("住宿和餐饮业", "餐饮管理"),
    ("农、林、牧、渔业", "农业发展"),
];
const SHOP: &str = "华泰兴海陵凤城春江祥瑞鑫源恒达宏远金鼎正和德润天成永盛嘉禾";

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.gen_range(0..xs.len())]
}

fn pick_char(rng: &mut StdRng, s: &str) -> char {
    let chars: Vec<char> = s.chars().collect();
    chars[rng.gen_range(0..chars.len())]
}

fn name(rng: &mut StdRng) -> String {
    let mut n = String::new();
    n.push(pick_char(rng, SURNAMES));
    n.push(pick_char(rng, GIVEN));
    if rng.gen_bool(0.6) {
        n.push(pick_char(rng, GIVEN));
    }
    n
}

fn mobile(rng: &mut StdRng) -> String {
    let prefix = pick(
        rng,
        &[
            "138", "139", "137", "136", "150", "151", "152", "157", "158", "159", "182", "187", "188", "133", "153",
            "180", "189", "177", "199",
        ],
    );
    format!("{prefix}{:08}", rng.gen_range(0..100_000_000u32))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Write `rows` rows (plus the header) to `out`, `defects` of them (a fraction) deliberately
/// wrong. Deterministic for a given `seed`. Returns the number of defective rows.
pub fn generate(
    register: Register,
    rows: u64,
    defects: f64,
    seed: u64,
    gb18030: bool,
    out: &mut dyn Write,
) -> std::io::Result<u64> {
    Ok(generate_listing(register, rows, defects, seed, gb18030, out)?.len() as u64)
}

/// As [`generate`], returning each defective row's file line and the rule it breaks
/// (`id_card`, `mobile`, `id_card_birth_date`, `id_card_sex`, `uscc`).
pub fn generate_listing(
    register: Register,
    rows: u64,
    defects: f64,
    seed: u64,
    gb18030: bool,
    out: &mut dyn Write,
) -> std::io::Result<Vec<(u64, &'static str)>> {
    let mut listing = Vec::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let emit = |line: String, out: &mut dyn Write| -> std::io::Result<()> {
        if gb18030 {
            let (bytes, _, _) = encoding_rs::GB18030.encode(&line);
            out.write_all(&bytes)
        } else {
            out.write_all(line.as_bytes())
        }
    };
    match register {
        Register::Population => {
            emit(
                "身份证号,姓名,性别,出生日期,民族,行政区划代码,区县,户籍地址,手机号,婚姻状况,文化程度,更新时间\n"
                    .into(),
                out,
            )?;
            let epoch = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).expect("static date");
            for i in 0..rows {
                // (district, birth date, sequence) is unique per row up to tens of millions of
                // rows: the district cycles, the sequence number counts, the birth date strides.
                let (code, district, roads) = &DISTRICTS[(i % 6) as usize];
                let k = i / 6;
                let birth = epoch + chrono::Duration::days((k * 7919 % 25_550) as i64);
                let male = rng.gen_bool(0.5);
                let seq = ((k / 25_550) % 500) as u32 * 2 + if male { 1 } else { 0 };
                let first17 = format!("{code}{}{seq:03}", birth.format("%Y%m%d"));
                let mut id = format!("{first17}{}", id_check_char(&first17).expect("digits"));
                let mut phone = mobile(&mut rng);
                let mut sex = if male { "男" } else { "女" };
                let mut birth_text = if rng.gen_bool(0.2) {
                    birth.format("%Y/%-m/%-d").to_string()
                } else {
                    birth.format("%Y-%m-%d").to_string()
                };
                if rng.gen_bool(defects.clamp(0.0, 1.0)) {
                    let rule = match rng.gen_range(0..4) {
                        0 => {
                            // A wrong check character.
                            let c = id.pop().expect("18 chars");
                            id.push(if c == '0' { '1' } else { '0' });
                            "id_card"
                        }
                        1 => {
                            phone.truncate(10);
                            "mobile"
                        }
                        2 => {
                            birth_text = (birth + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
                            "id_card_birth_date"
                        }
                        _ => {
                            sex = if male { "女" } else { "男" };
                            "id_card_sex"
                        }
                    };
                    listing.push((i + 2, rule));
                }
                let ethnic = {
                    let total: u32 = ETHNIC.iter().map(|e| e.1).sum();
                    let mut x = rng.gen_range(0..total);
                    ETHNIC
                        .iter()
                        .find(|e| {
                            if x < e.1 {
                                true
                            } else {
                                x -= e.1;
                                false
                            }
                        })
                        .map(|e| e.0)
                        .unwrap_or("汉族")
                };
                let addr = format!("江苏省泰州市{district}{}{}号", pick(&mut rng, roads), rng.gen_range(1..400));
                let updated = format!(
                    "2024-{:02}-{:02} {:02}:{:02}:{:02}",
                    rng.gen_range(1..13),
                    rng.gen_range(1..29),
                    rng.gen_range(0..24),
                    rng.gen_range(0..60),
                    rng.gen_range(0..60)
                );
                let line = [
                    id,
                    name(&mut rng),
                    sex.to_string(),
                    birth_text,
                    ethnic.to_string(),
                    code.to_string(),
                    district.to_string(),
                    addr,
                    phone,
                    pick(&mut rng, MARITAL).to_string(),
                    pick(&mut rng, EDUCATION).to_string(),
                    updated,
                ]
                .iter()
                .map(|s| csv_field(s))
                .collect::<Vec<_>>()
                .join(",");
                emit(format!("{line}\n"), out)?;
            }
        }
        Register::Enterprise => {
            emit(
                "统一社会信用代码,企业名称,法定代表人,注册资本万元,成立日期,区县,行政区划代码,行业,住所\n".into(),
                out,
            )?;
            let alphabet: Vec<char> = USCC_ALPHABET.chars().collect();
            let epoch = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).expect("static date");
            for i in 0..rows {
                let (code, district, roads) = pick(&mut rng, DISTRICTS);
                // Organization codes: a unique numbered body, with its GB 11714 check character.
                let body = format!("{:08}", 10_000_000 + i);
                let org = format!("{body}{}", org_check_char(&body).expect("digits"));
                let first17 = format!("91{code}{org}");
                let mut uscc = format!("{first17}{}", uscc_check_char(&first17).expect("alphabet"));
                if rng.gen_bool(defects.clamp(0.0, 1.0)) {
                    listing.push((i + 2, "uscc"));
                    let c = uscc.pop().expect("18 chars");
                    let next = alphabet[(alphabet.iter().position(|a| *a == c).unwrap_or(0) + 1) % alphabet.len()];
                    uscc.push(next);
                }
                let (industry, word) = pick(&mut rng, INDUSTRY);
                let mut shop = String::new();
                shop.push(pick_char(&mut rng, SHOP));
                shop.push(pick_char(&mut rng, SHOP));
                let company = format!("泰州市{shop}{word}有限公司");
                let capital = format!("{:.2}", rng.gen_range(10.0..50_000.0f64));
                let founded = epoch + chrono::Duration::days(rng.gen_range(0..12_000));
                let addr = format!("泰州市{district}{}{}号", pick(&mut rng, roads), rng.gen_range(1..400));
                let line = [
                    uscc,
                    company,
                    name(&mut rng),
                    capital,
                    founded.format("%Y-%m-%d").to_string(),
                    district.to_string(),
                    code.to_string(),
                    industry.to_string(),
                    addr,
                ]
                .iter()
                .map(|s| csv_field(s))
                .collect::<Vec<_>>()
                .join(",");
                emit(format!("{line}\n"), out)?;
            }
        }
    }
    Ok(listing)
}

/// Rows that satisfy `items` (types, validators, unique keys) for any catalog resource, as CSV
/// with the items' Chinese titles as the header.
pub fn generate_for_items(items: &[citydata_domain::resource::InfoItem], rows: u64, seed: u64) -> String {
    use citydata_domain::resource::Validator;
    use citydata_domain::vocab::DataType;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = items.iter().map(|i| csv_field(&i.title)).collect::<Vec<_>>().join(",");
    out.push('\n');
    let base_day = chrono::NaiveDate::from_ymd_opt(2015, 1, 1).expect("static date");
    let base_time =
        chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("static date").and_hms_opt(0, 0, 0).expect("static time");
    for i in 0..rows {
        let (code, district, roads) = &DISTRICTS[(i % 6) as usize];
        let cells: Vec<String> = items
            .iter()
            .map(|item| {
                let v = match (&item.validator, item.data_type) {
                    (Some(Validator::IdCard), _) => {
                        let birth = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).expect("static date")
                            + chrono::Duration::days((i * 7919 % 20_000) as i64);
                        let first17 = format!("{code}{}{:03}", birth.format("%Y%m%d"), (i / 20_000) % 1000);
                        format!("{first17}{}", id_check_char(&first17).expect("digits"))
                    }
                    (Some(Validator::Uscc), _) => {
                        let body = format!("{:08}", 20_000_000 + i);
                        let first17 = format!("91{code}{body}{}", org_check_char(&body).expect("digits"));
                        format!("{first17}{}", uscc_check_char(&first17).expect("alphabet"))
                    }
                    (Some(Validator::OrgCode), _) => {
                        let body = format!("{:08}", 30_000_000 + i);
                        format!("{body}{}", org_check_char(&body).expect("digits"))
                    }
                    (Some(Validator::RegionCode), _) => code.to_string(),
                    (Some(Validator::Mobile), _) => mobile(&mut rng),
                    (Some(Validator::Email), _) => format!("user{i}@tz.gov.cn"),
                    (Some(Validator::BankCard), _) => {
                        let body = format!("622202{:09}", i);
                        (0..10)
                            .map(|c| format!("{body}{c}"))
                            .find(|s| citydata_domain::identifiers::is_bank_card(s))
                            .unwrap_or(body)
                    }
                    (Some(Validator::Enum(vals)), _) => {
                        if item.key {
                            vals[(i as usize) % vals.len()].to_string()
                        } else {
                            pick(&mut rng, vals).clone()
                        }
                    }
                    (Some(Validator::Range { min, max }), DataType::Integer) => {
                        let (lo, hi) = (min.ceil() as i64, max.floor() as i64);
                        if hi > lo { rng.gen_range(lo..=hi).to_string() } else { lo.to_string() }
                    }
                    (Some(Validator::Range { min, max }), _) => format!("{:.2}", rng.gen_range(*min..=*max)),
                    (_, DataType::Integer) => rng.gen_range(0..1000).to_string(),
                    (_, DataType::Decimal) | (_, DataType::Money) => format!("{:.2}", rng.gen_range(0.0..10_000.0f64)),
                    (_, DataType::Boolean) => if rng.gen_bool(0.5) { "是" } else { "否" }.to_string(),
                    (_, DataType::Date) => (base_day + chrono::Duration::days(rng.gen_range(0..3650))).to_string(),
                    (_, DataType::Datetime) if item.key => {
                        (base_time + chrono::Duration::hours(i as i64)).format("%Y-%m-%d %H:%M:%S").to_string()
                    }
                    (_, DataType::Datetime) => (base_time + chrono::Duration::minutes(rng.gen_range(0..525_600)))
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string(),
                    (_, DataType::Binary) => String::new(),
                    (_, DataType::Point) | (_, DataType::Geometry) => {
                        crate::demo::spatial::cell(item, (i % 6) as usize, &mut rng)
                    }
                    (_, DataType::Text) => format!("{}{}的说明", district, item.title),
                    (_, DataType::String) if item.key => format!("TZ{:06}", i + 1),
                    (_, DataType::String)
                        if item.title.contains("地址")
                            || item.title.contains("住所")
                            || item.title.contains("场所") =>
                    {
                        format!("泰州市{district}{}{}号", pick(&mut rng, roads), rng.gen_range(1..300))
                    }
                    (_, DataType::String) if item.title.contains("名称") => {
                        let mut n = String::from("泰州市");
                        n.push(pick_char(&mut rng, SHOP));
                        n.push(pick_char(&mut rng, SHOP));
                        n.push_str(&item.title.replace("名称", ""));
                        n
                    }
                    (_, DataType::String)
                        if item.title.contains("姓名")
                            || item.title.contains("代表人")
                            || item.title.contains("经营者") =>
                    {
                        name(&mut rng)
                    }
                    (_, DataType::String) => format!("{district}{}{}", item.title, rng.gen_range(1..100)),
                };
                csv_field(&v)
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use citydata_domain::identifiers::{IdNumber, is_mobile, is_uscc};

    #[test]
    fn clean_registers_validate_and_defects_are_counted() {
        let mut out = Vec::new();
        let bad = generate(Register::Population, 2000, 0.0, 1, false, &mut out).unwrap();
        assert_eq!(bad, 0);
        let text = String::from_utf8(out).unwrap();
        let mut ids = std::collections::HashSet::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let id = IdNumber::parse(f[0]).unwrap();
            assert!(ids.insert(f[0].to_string()), "unique ids");
            assert_eq!(id.sex().title(), f[2]);
            assert_eq!(citydata_domain::cast::parse_date(f[3]).unwrap(), id.birth_date());
            assert!(is_mobile(f[8]));
            assert!(f[7].contains(f[6]));
        }
        let mut out = Vec::new();
        generate(Register::Enterprise, 500, 0.0, 2, false, &mut out).unwrap();
        for line in String::from_utf8(out).unwrap().lines().skip(1) {
            assert!(is_uscc(line.split(',').next().unwrap()));
        }
        let mut out = Vec::new();
        let bad = generate(Register::Population, 10_000, 0.01, 3, true, &mut out).unwrap();
        assert!((50..=150).contains(&bad), "{bad}");
        assert!(std::str::from_utf8(&out).is_err(), "GB18030 bytes");
    }
}
