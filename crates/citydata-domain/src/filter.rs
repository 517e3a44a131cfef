//! The row filter language of grants and of the `filter=` parameter: `item op literal`, `AND`,
//! `OR`, `NOT`, `IN (...)`, `BETWEEN a AND b`, `IS [NOT] NULL`, parentheses, and on spatial
//! items `within(item, bbox(minlon, minlat, maxlon, maxlat))` and `distance(item, point(lon, lat)) < metres`.
//! Items are named by `name` or Chinese `title`; literals are type-checked against the item.
//!
//! ```
//! # use citydata_domain::filter::Filter;
//! # use citydata_domain::resource::{ResourceDraft, ResourceInput};
//! let input: ResourceInput = serde_json::from_value(serde_json::json!({
//!     "name": "人口", "abstract": "x", "provider": "gaj",
//!     "classification": {"class": "basic", "theme": "population"},
//!     "format": {"category": "database"},
//!     "items": [{"name": "qx", "title": "区县"}, {"name": "csrq", "title": "出生日期", "data_type": "date"}],
//!     "share": {"type": "unconditional"}, "open": {"type": "none"}, "update_cycle": "daily"
//! })).unwrap();
//! let items = ResourceDraft::parse(&input).unwrap().content.items;
//! let f = Filter::parse("区县 = '海陵区' AND 出生日期 >= '1990/1/1'", &items).unwrap();
//! assert_eq!(f.to_string(), "(qx = '海陵区' AND csrq >= DATE '1990-01-01')");
//! ```

use crate::cast;
use crate::error::FieldError;
use crate::resource::{InfoItem, ItemName};
use crate::vocab::DataType;
use chrono::NaiveDate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::NotEq => "<>",
            Self::Lt => "<",
            Self::LtEq => "<=",
            Self::Gt => ">",
            Self::GtEq => ">=",
        }
    }
}

/// A literal, already converted to its item's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    /// A decimal as text (exact), for decimal and money items.
    Dec(String),
    Bool(bool),
    Date(NaiveDate),
    /// An instant: offsets in the text honored, naive times local ([`cast::parse_instant`]).
    DateTime(chrono::DateTime<chrono::Utc>),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Self::Int(i) => write!(f, "{i}"),
            Self::Dec(d) => f.write_str(d),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Date(d) => write!(f, "DATE '{d}'"),
            Self::DateTime(t) => write!(f, "TIMESTAMP '{}'", cast::format_instant(*t)),
        }
    }
}

/// A parsed, type-checked filter over a resource's items.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Cmp {
        item: ItemName,
        op: CmpOp,
        value: Literal,
    },
    In {
        item: ItemName,
        values: Vec<Literal>,
        negated: bool,
    },
    Between {
        item: ItemName,
        low: Literal,
        high: Literal,
    },
    IsNull {
        item: ItemName,
        negated: bool,
    },
    /// `within(item, bbox(minlon, minlat, maxlon, maxlat))` on a spatial item (CGCS2000).
    Within {
        item: ItemName,
        bbox: crate::geo::BBox,
    },
    /// `within(item, '<GB/T 2260 code>')`: inside a district of the configured boundary
    /// resource; `shape` is its outline, resolved when the filter is parsed.
    WithinRegion {
        item: ItemName,
        code: String,
        shape: std::sync::Arc<crate::geo::Geometry>,
    },
    /// `distance(item, point(lon, lat)) < metres` (or `<=`) on a spatial item.
    Distance {
        item: ItemName,
        lon: f64,
        lat: f64,
        meters: f64,
        inclusive: bool,
    },
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::And(a, b) => write!(f, "({a} AND {b})"),
            Self::Or(a, b) => write!(f, "({a} OR {b})"),
            Self::Not(a) => write!(f, "(NOT {a})"),
            Self::Cmp { item, op, value } => write!(f, "{item} {} {value}", op.as_str()),
            Self::In { item, values, negated } => {
                let vs: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                write!(f, "{item} {}IN ({})", if *negated { "NOT " } else { "" }, vs.join(", "))
            }
            Self::Between { item, low, high } => write!(f, "{item} BETWEEN {low} AND {high}"),
            Self::IsNull { item, negated } => write!(f, "{item} IS {}NULL", if *negated { "NOT " } else { "" }),
            Self::Within { item, bbox: b } => {
                write!(f, "within({item}, bbox({}, {}, {}, {}))", b.min_lon, b.min_lat, b.max_lon, b.max_lat)
            }
            Self::WithinRegion { item, code, .. } => write!(f, "within({item}, '{code}')"),
            Self::Distance { item, lon, lat, meters, inclusive } => {
                write!(f, "distance({item}, point({lon}, {lat})) {} {meters}", if *inclusive { "<=" } else { "<" })
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn err(pos: usize, msg: impl Into<String>) -> FieldError {
    FieldError::new(
        "filter",
        "invalid_filter",
        format!("过滤条件第 {} 个字符处 / filter at character {}: {}", pos + 1, pos + 1, msg.into()),
    )
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, FieldError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((start, Tok::LParen));
            i += 1;
        } else if c == ')' {
            out.push((start, Tok::RParen));
            i += 1;
        } else if c == ',' || c == '，' {
            out.push((start, Tok::Comma));
            i += 1;
        } else if c == '\'' || c == '‘' || c == '’' {
            i += 1;
            let mut v = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(err(start, "字符串没有结束引号 / unterminated string")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        v.push('\'');
                        i += 2;
                    }
                    Some('\'') | Some('’') | Some('‘') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        v.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push((start, Tok::Str(v)));
        } else if c == '"' {
            i += 1;
            let mut v = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(err(start, "标识符没有结束引号 / unterminated quoted name")),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        v.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push((start, Tok::Ident(v)));
        } else if c.is_ascii_digit() || ((c == '-' || c == '.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut v = String::from(c);
            i += 1;
            while let Some(d) = chars.get(i).filter(|d| d.is_ascii_digit() || **d == '.') {
                v.push(*d);
                i += 1;
            }
            out.push((start, Tok::Num(v)));
        } else if "=<>!".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = match two.as_str() {
                "<=" => "<=",
                ">=" => ">=",
                "<>" | "!=" => "<>",
                _ => match c {
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    _ => return Err(err(start, "未知的运算符 / unknown operator")),
                },
            };
            i += op.len().min(2).max(if op == "<>" { 2 } else { op.len() });
            out.push((start, Tok::Op(op)));
        } else if c.is_alphanumeric() || c == '_' || c == '.' {
            let mut v = String::new();
            while let Some(d) = chars.get(i).filter(|d| d.is_alphanumeric() || **d == '_' || **d == '.') {
                v.push(*d);
                i += 1;
            }
            out.push((start, Tok::Ident(v)));
        } else {
            return Err(err(start, format!("不能使用字符“{c}” / unexpected character '{c}'")));
        }
    }
    Ok(out)
}

/// Deepest nesting of parentheses and `NOT` a filter may have.
pub const MAX_DEPTH: usize = 32;
/// Most predicates (comparisons, `IN`, `BETWEEN`, `IS NULL`) a filter may have. With
/// [`MAX_DEPTH`] this bounds the depth of the [`Filter`] tree, which `Display`, `items`, `Drop`
/// and the query planner walk recursively.
pub const MAX_PREDICATES: usize = 200;

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    items: &'a [InfoItem],
    len: usize,
    depth: usize,
    predicates: usize,
    regions: Option<&'a crate::geo::Regions>,
}

fn kw(t: &Tok, k: &str) -> bool {
    matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case(k))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|(p, _)| *p).unwrap_or(self.len)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }
    fn eat_kw(&mut self, k: &str) -> bool {
        if self.peek().is_some_and(|t| kw(t, k)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Filter, FieldError> {
        let mut l = self.and()?;
        while self.eat_kw("OR") || self.eat_kw("或") {
            l = Filter::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Filter, FieldError> {
        let mut l = self.not()?;
        while self.eat_kw("AND") || self.eat_kw("且") {
            l = Filter::And(Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }
    /// One level deeper (a `NOT` or a parenthesis at `at`), refused past [`MAX_DEPTH`].
    fn descend(&mut self, at: usize) -> Result<(), FieldError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FieldError::new(
                "filter",
                "filter_too_deep",
                format!(
                    "过滤条件第 {} 个字符处嵌套超过 {MAX_DEPTH} 层（括号与 NOT）/ filter at character {}: nested deeper than {MAX_DEPTH} levels (parentheses and NOT)",
                    at + 1,
                    at + 1
                ),
            ));
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Filter, FieldError> {
        let at = self.at();
        if self.eat_kw("NOT") {
            self.descend(at)?;
            let e = Filter::Not(Box::new(self.not()?));
            self.depth -= 1;
            return Ok(e);
        }
        if self.peek() == Some(&Tok::LParen) {
            self.descend(at)?;
            self.pos += 1;
            let e = self.or()?;
            if self.next() != Some(Tok::RParen) {
                return Err(err(self.at(), "缺少右括号 / missing ')'"));
            }
            self.depth -= 1;
            return Ok(e);
        }
        self.predicate()
    }

    fn item(&mut self) -> Result<&InfoItem, FieldError> {
        let at = self.at();
        match self.next() {
            Some(Tok::Ident(name)) => {
                let n = name.to_ascii_lowercase();
                self.items
                    .iter()
                    .find(|i| i.name.as_str() == n || i.title == name)
                    .ok_or_else(|| err(at, format!("没有信息项“{name}” / no item named \"{name}\"")))
            }
            _ => Err(err(at, "此处应为信息项名称 / an item name is expected here")),
        }
    }

    fn literal(&mut self, item: &InfoItem) -> Result<Literal, FieldError> {
        let at = self.at();
        let tok = self.next().ok_or_else(|| err(at, "此处应为取值 / a value is expected here"))?;
        let text = match &tok {
            Tok::Str(s) | Tok::Num(s) => s.clone(),
            Tok::Ident(s)
                if item.data_type == DataType::Boolean
                    || s.eq_ignore_ascii_case("true")
                    || s.eq_ignore_ascii_case("false") =>
            {
                s.to_ascii_lowercase()
            }
            _ => {
                return Err(err(at, "此处应为取值（字符串用单引号）/ a value is expected here (quote strings with ')"));
            }
        };
        let bad = |what: &str| {
            err(
                at,
                format!(
                    "“{}”是{}，\"{text}\" 不是有效的取值 / {} is {}, \"{text}\" does not fit",
                    item.title,
                    what,
                    item.name,
                    item.data_type.as_str()
                ),
            )
        };
        Ok(match item.data_type {
            DataType::String | DataType::Text | DataType::Binary => Literal::Str(text),
            DataType::Point | DataType::Geometry => {
                return Err(err(
                    at,
                    format!(
                        "空间信息项“{}”只能用 within(…) 或 distance(…) 过滤 / filter spatial item {} with within(…) or distance(…)",
                        item.title, item.name
                    ),
                ));
            }
            DataType::Integer => Literal::Int(cast::parse_int(&text).ok_or_else(|| bad("整数"))?),
            DataType::Decimal | DataType::Money => {
                cast::parse_decimal(&text, 6).ok_or_else(|| bad("数值"))?;
                Literal::Dec(cast::half_width(text.trim()).replace([',', '，'], ""))
            }
            DataType::Boolean => Literal::Bool(cast::parse_bool(&text).ok_or_else(|| bad("是/否"))?),
            DataType::Date => Literal::Date(cast::parse_date(&text).ok_or_else(|| bad("日期"))?),
            DataType::Datetime => Literal::DateTime(cast::parse_instant(&text).ok_or_else(|| bad("日期时间"))?),
        })
    }

    fn predicate(&mut self) -> Result<Filter, FieldError> {
        self.predicates += 1;
        if self.predicates > MAX_PREDICATES {
            let at = self.at();
            return Err(FieldError::new(
                "filter",
                "filter_too_complex",
                format!(
                    "过滤条件第 {} 个字符处超过 {MAX_PREDICATES} 个条件 / filter at character {}: more than {MAX_PREDICATES} conditions",
                    at + 1,
                    at + 1
                ),
            ));
        }
        if self.toks.get(self.pos + 1).is_some_and(|(_, t)| *t == Tok::LParen)
            && self.peek().is_some_and(|t| kw(t, "within") || kw(t, "distance"))
        {
            return self.spatial();
        }
        let item = self.item()?.clone();
        let at = self.at();
        if self.eat_kw("IS") {
            let negated = self.eat_kw("NOT");
            if !self.eat_kw("NULL") {
                return Err(err(self.at(), "IS 后应为 NULL 或 NOT NULL / expected NULL or NOT NULL after IS"));
            }
            return Ok(Filter::IsNull { item: item.name, negated });
        }
        let negated = self.eat_kw("NOT");
        if self.eat_kw("IN") {
            if self.next() != Some(Tok::LParen) {
                return Err(err(self.at(), "IN 后应为 ( / expected '(' after IN"));
            }
            let mut values = vec![self.literal(&item)?];
            loop {
                match self.next() {
                    Some(Tok::Comma) => values.push(self.literal(&item)?),
                    Some(Tok::RParen) => break,
                    _ => return Err(err(self.at(), "IN 列表应以 ) 结束 / expected ',' or ')'")),
                }
            }
            return Ok(Filter::In { item: item.name, values, negated });
        }
        if negated {
            return Err(err(at, "NOT 后应为 IN / expected IN after NOT"));
        }
        if self.eat_kw("BETWEEN") {
            let low = self.literal(&item)?;
            if !self.eat_kw("AND") {
                return Err(err(self.at(), "BETWEEN 需要 AND / BETWEEN needs AND"));
            }
            let high = self.literal(&item)?;
            return Ok(Filter::Between { item: item.name, low, high });
        }
        let op = match self.next() {
            Some(Tok::Op("=")) => CmpOp::Eq,
            Some(Tok::Op("<>")) => CmpOp::NotEq,
            Some(Tok::Op("<")) => CmpOp::Lt,
            Some(Tok::Op("<=")) => CmpOp::LtEq,
            Some(Tok::Op(">")) => CmpOp::Gt,
            Some(Tok::Op(">=")) => CmpOp::GtEq,
            _ => {
                return Err(err(
                    at,
                    "此处应为比较运算符（= <> < <= > >=、IN、BETWEEN、IS NULL）/ a comparison is expected here",
                ));
            }
        };
        let value = self.literal(&item)?;
        Ok(Filter::Cmp { item: item.name, op, value })
    }
}

impl Parser<'_> {
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), FieldError> {
        let at = self.at();
        if self.next() == Some(t) { Ok(()) } else { Err(err(at, format!("此处应为 {what} / expected {what}"))) }
    }

    fn number(&mut self) -> Result<f64, FieldError> {
        let at = self.at();
        match self.next() {
            Some(Tok::Num(n)) => {
                n.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| err(at, "数字无效 / not a number"))
            }
            _ => Err(err(at, "此处应为数字 / a number is expected here")),
        }
    }

    /// `n` numbers in parentheses after the function name `f`.
    fn args(&mut self, f: &str, n: usize) -> Result<Vec<f64>, FieldError> {
        if !self.eat_kw(f) {
            return Err(err(self.at(), format!("此处应为 {f}(…) / expected {f}(…)")));
        }
        self.expect(Tok::LParen, "(")?;
        let mut v = vec![self.number()?];
        while v.len() < n {
            self.expect(Tok::Comma, ",")?;
            v.push(self.number()?);
        }
        self.expect(Tok::RParen, ")")?;
        Ok(v)
    }

    /// `within(item, bbox(…))` and `distance(item, point(…)) < m`.
    fn spatial(&mut self) -> Result<Filter, FieldError> {
        let within = self.eat_kw("within");
        if !within {
            self.eat_kw("distance");
        }
        self.expect(Tok::LParen, "(")?;
        let at = self.at();
        let item = self.item()?.clone();
        if !item.data_type.is_spatial() {
            return Err(err(
                at,
                format!("“{}”不是空间信息项（点位或空间几何）/ {} is not a spatial item", item.title, item.name),
            ));
        }
        self.expect(Tok::Comma, ",")?;
        if within {
            if let Some(Tok::Str(code)) = self.peek().cloned() {
                let at = self.at();
                let Some(regions) = self.regions else {
                    return Err(err(
                        at,
                        "按行政区划过滤需要配置边界资源，当前未配置 / within a region needs a boundary resource, none is configured",
                    ));
                };
                let code = code.trim().to_string();
                let Some(shape) = regions.by_code.get(&code).cloned() else {
                    return Err(err(
                        at,
                        format!("边界资源中没有行政区划代码“{code}” / the boundary resource has no region {code}"),
                    ));
                };
                self.next();
                self.expect(Tok::RParen, ")")?;
                return Ok(Filter::WithinRegion { item: item.name, code, shape });
            }
            let at = self.at();
            let v = self.args("bbox", 4)?;
            self.expect(Tok::RParen, ")")?;
            let bbox = crate::geo::BBox { min_lon: v[0], min_lat: v[1], max_lon: v[2], max_lat: v[3] };
            if bbox.min_lon > bbox.max_lon || bbox.min_lat > bbox.max_lat {
                return Err(err(
                    at,
                    "bbox 应为（最小经度, 最小纬度, 最大经度, 最大纬度）/ bbox is (minlon, minlat, maxlon, maxlat)",
                ));
            }
            return Ok(Filter::Within { item: item.name, bbox });
        }
        let v = self.args("point", 2)?;
        self.expect(Tok::RParen, ")")?;
        let at = self.at();
        let inclusive = match self.next() {
            Some(Tok::Op("<")) => false,
            Some(Tok::Op("<=")) => true,
            _ => return Err(err(at, "distance(…) 后应为 < 或 <= 米数 / expected < or <= metres after distance(…)")),
        };
        let meters = self.number()?;
        Ok(Filter::Distance { item: item.name, lon: v[0], lat: v[1], meters, inclusive })
    }
}

impl Filter {
    /// Parse and type-check `text` against `items` (no districts: `within(item, '<code>')` is
    /// refused).
    pub fn parse(text: &str, items: &[InfoItem]) -> Result<Self, FieldError> {
        Self::parse_in(text, items, None)
    }

    /// [`Filter::parse`] with the boundary resource's districts for `within(item, '<code>')`.
    pub fn parse_in(text: &str, items: &[InfoItem], regions: Option<&crate::geo::Regions>) -> Result<Self, FieldError> {
        if text.chars().count() > 4000 {
            return Err(err(0, "过滤条件过长 / the filter is too long"));
        }
        let toks = lex(text)?;
        if toks.is_empty() {
            return Err(err(0, "过滤条件为空 / the filter is empty"));
        }
        let mut p = Parser { toks, pos: 0, items, len: text.chars().count(), depth: 0, predicates: 0, regions };
        let f = p.or()?;
        if p.pos < p.toks.len() {
            return Err(err(p.at(), "条件后有多余内容 / unexpected text after the condition"));
        }
        Ok(f)
    }

    /// Every item the filter reads.
    pub fn items(&self) -> Vec<&ItemName> {
        match self {
            Self::And(a, b) | Self::Or(a, b) => {
                let mut v = a.items();
                v.extend(b.items());
                v
            }
            Self::Not(a) => a.items(),
            Self::Cmp { item, .. }
            | Self::In { item, .. }
            | Self::Between { item, .. }
            | Self::IsNull { item, .. }
            | Self::Within { item, .. }
            | Self::WithinRegion { item, .. }
            | Self::Distance { item, .. } => {
                vec![item]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{ResourceDraft, ResourceInput};
    use proptest::prelude::*;

    fn items() -> Vec<InfoItem> {
        let input: ResourceInput = serde_json::from_value(serde_json::json!({
            "name": "人口", "abstract": "x", "provider": "gaj",
            "classification": {"class": "basic", "theme": "population"},
            "format": {"category": "database"},
            "items": [
                {"name": "qx", "title": "区县"},
                {"name": "nl", "title": "年龄", "data_type": "integer"},
                {"name": "csrq", "title": "出生日期", "data_type": "date"},
                {"name": "zc", "title": "资产", "data_type": "decimal"},
                {"name": "sy", "title": "失业", "data_type": "boolean"},
                {"name": "wz", "title": "位置", "data_type": "point", "validator": "crs:gcj02"}
            ],
            "share": {"type": "unconditional"}, "open": {"type": "none"}, "update_cycle": "daily"
        }))
        .unwrap();
        ResourceDraft::parse(&input).unwrap().content.items
    }

    #[test]
    fn spatial_predicates_parse_and_print_back() {
        let items = items();
        for (text, printed) in [
            ("within(位置, bbox(119.9, 32.4, 119.95, 32.5))", "within(wz, bbox(119.9, 32.4, 119.95, 32.5))"),
            (
                "distance(wz, point(119.92, 32.45)) < 1000 AND qx = '海陵区'",
                "(distance(wz, point(119.92, 32.45)) < 1000 AND qx = '海陵区')",
            ),
            ("NOT distance(wz, point(119.92, 32.45)) <= 0.5", "(NOT distance(wz, point(119.92, 32.45)) <= 0.5)"),
        ] {
            let f = Filter::parse(text, &items).unwrap();
            assert_eq!(f.to_string(), printed);
            assert_eq!(Filter::parse(&f.to_string(), &items).unwrap(), f, "grants store the printed form");
            assert_eq!(f.items().iter().filter(|i| i.as_str() == "wz").count(), 1);
        }
        for bad in [
            "within(qx, bbox(1, 2, 3, 4))",
            "within(wz, bbox(2, 2, 1, 1))",
            "within(wz, bbox(1, 2, 3))",
            "within(wz, '321202')",
            "distance(wz, point(1, 2)) > 3",
            "wz = 'POINT (1 2)'",
        ] {
            assert_eq!(Filter::parse(bad, &items).unwrap_err().code, "invalid_filter", "{bad}");
        }
    }

    #[test]
    fn within_a_district_of_the_boundary_resource() {
        use crate::geo::{Geometry, Regions};
        let items = items();
        let shape = Geometry::parse_wkt("POLYGON ((119.8 32.3, 120.1 32.3, 120.1 32.6, 119.8 32.3))").unwrap();
        let mut regions = Regions::default();
        regions.by_code.insert("321202".into(), std::sync::Arc::new(shape.clone()));
        let f = Filter::parse_in("within(位置, '321202') AND qx IS NOT NULL", &items, Some(&regions)).unwrap();
        assert_eq!(f.to_string(), "(within(wz, '321202') AND qx IS NOT NULL)");
        assert_eq!(
            Filter::parse_in(&f.to_string(), &items, Some(&regions)).unwrap(),
            f,
            "the printed form parses back"
        );
        let Filter::And(a, _) = &f else { panic!("{f:?}") };
        assert!(matches!(&**a, Filter::WithinRegion { code, shape: s, .. } if code == "321202" && **s == shape));
        for (bad, why) in [
            ("within(wz, '321299')", "no region 321299"),
            ("within(qx, '321202')", "not a spatial item"),
            ("within(wz, '321202'", "expected )"),
        ] {
            let e = Filter::parse_in(bad, &items, Some(&regions)).unwrap_err();
            assert_eq!(e.code, "invalid_filter", "{bad}");
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
        let e = Filter::parse("within(wz, '321202')", &items).unwrap_err();
        assert!(e.message.contains("none is configured"), "{}", e.message);
    }

    #[test]
    fn the_whole_language() {
        let it = items();
        let cases = [
            ("区县 = '海陵区'", "qx = '海陵区'"),
            ("qx IN ('海陵区', '高港区')", "qx IN ('海陵区', '高港区')"),
            ("qx NOT IN ('海陵区')", "qx NOT IN ('海陵区')"),
            ("年龄 BETWEEN 18 AND 60", "nl BETWEEN 18 AND 60"),
            ("csrq >= '1990年1月1日' AND NOT (qx IS NULL)", "(csrq >= DATE '1990-01-01' AND (NOT qx IS NULL))"),
            ("zc > 1000.5 OR sy = 是", "(zc > 1000.5 OR sy = true)"),
            ("qx IS NOT NULL or nl <> 3", "(qx IS NOT NULL OR nl <> 3)"),
            ("\"区县\" = 'O''Brien'", "qx = 'O''Brien'"),
        ];
        for (input, want) in cases {
            assert_eq!(Filter::parse(input, &it).unwrap().to_string(), want, "{input}");
        }
        let f = Filter::parse("qx = 'a' AND (nl > 1 OR csrq IS NULL)", &it).unwrap();
        assert_eq!(f.items().len(), 3);
    }

    #[test]
    fn errors_name_the_problem() {
        let it = items();
        for (bad, needle) in [
            ("颜色 = '红'", "颜色"),
            ("年龄 = 'abc'", "abc"),
            ("出生日期 > 'yesterday'", "yesterday"),
            ("qx = '海陵区", "引号"),
            ("qx = 'a' AND", "信息项"),
            ("(qx = 'a'", "括号"),
            ("qx LIKE 'a%'", "比较"),
            ("upper(qx) = 'A'", "upper"),
            ("qx = 'a'; DROP TABLE t", "字符"),
            ("", "为空"),
        ] {
            let e = Filter::parse(bad, &it).unwrap_err();
            assert_eq!(e.field, "filter");
            assert!(e.message.contains(needle), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn nesting_and_length_are_bounded() {
        let it = items();
        let deep = format!("{}qx = 'a'{}", "(".repeat(1900), ")".repeat(1900));
        let e = Filter::parse(&deep, &it).unwrap_err();
        assert_eq!(e.code, "filter_too_deep");
        assert!(e.message.contains("第 33 个字符"), "{}", e.message);
        let nots = format!("{}qx = 'a'", "NOT ".repeat(900));
        assert_eq!(Filter::parse(&nots, &it).unwrap_err().code, "filter_too_deep");
        let ok = format!("{}qx = 'a'{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Filter::parse(&ok, &it).is_ok());
        let chain = ["nl = 1"; MAX_PREDICATES + 1].join(" AND ");
        let e = Filter::parse(&chain, &it).unwrap_err();
        assert_eq!(e.code, "filter_too_complex");
        let chain = ["nl = 1"; MAX_PREDICATES].join(" OR ");
        let f = Filter::parse(&chain, &it).unwrap();
        assert_eq!(f.items().len(), MAX_PREDICATES);
        assert!(f.to_string().len() > 1000);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = Filter::parse(&s, &items());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// Nested and long inputs built from the language's own pieces never panic (no stack
        /// overflow): they parse or are refused.
        #[test]
        fn nested_and_long_inputs_never_panic(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("("), Just(")"), Just("NOT "), Just(" AND "), Just(" OR "), Just("qx = 'a'"),
                    Just("nl IN (1, 2)"), Just("nl BETWEEN 1 AND 2"), Just("qx IS NULL"), Just("年龄 > 3"),
                ],
                0..300,
            ),
            repeat in 1usize..12,
        ) {
            let s = parts.concat().repeat(repeat);
            if let Ok(f) = Filter::parse(&s, &items()) {
                let _ = f.to_string();
                let _ = f.items();
            }
        }
    }
}
