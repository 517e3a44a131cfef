//! `datastore_search`: rows through the gate in CKAN's DataStore shapes, with `_links`.

use super::*;

pub(super) fn ckan_literal(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(format!("'{}'", s.replace('\'', "''"))),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A `datastore_search` link with the request's parameters (filters, q, fields, sort, limit,
/// records_format...), at `offset` and pinned to `version` when given.
pub(super) fn datastore_link(base: &str, m: &Map<String, Value>, offset: Option<i64>, version: Option<i64>) -> String {
    let mut pairs: Vec<(String, String)> = m
        .iter()
        .filter(|(k, _)| !["offset", "version"].contains(&k.as_str()))
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::String(s) => Some((k.clone(), s.clone())),
            // `fields` as a list: the comma-separated form the GET parameter takes.
            Value::Array(a) if a.iter().all(Value::is_string) => {
                Some((k.clone(), a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")))
            }
            other => Some((k.clone(), other.to_string())),
        })
        .collect();
    pairs.sort();
    if let Some(o) = offset {
        pairs.push(("offset".into(), o.to_string()));
    }
    if let Some(v) = version {
        pairs.push(("version".into(), v.to_string()));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{base}/api/3/action/datastore_search?{query}")
}

/// CKAN's `datastore_search` over the governed rows read.
pub(super) async fn datastore_search(
    state: &AppState,
    meta: &citydata_core::RequestMeta,
    p: Option<&Principal>,
    base: &str,
    m: &Map<String, Value>,
) -> Result<Value, CkanError> {
    let id = param_str(m, "resource_id")
        .or_else(|| param_str(m, "id"))
        .ok_or_else(|| CkanError::validation("resource_id", "Missing value"))?;
    let key = id
        .rsplit_once('.')
        .filter(|(_, ext)| ["csv", "json", "xlsx", "geojson"].contains(ext))
        .map(|(k, _)| k.to_string())
        .unwrap_or(id.clone());
    // `q`: a string searches every text field; an object (or its JSON text) each named field.
    let q_object = |o: &Map<String, Value>| -> Result<Vec<(String, String)>, CkanError> {
        o.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                _ => Err(CkanError::validation("q", "Values of a q object must be strings")),
            })
            .collect()
    };
    let (q, q_fields) = match m.get("q") {
        None | Some(Value::Null) => (None, vec![]),
        Some(Value::Object(o)) => (None, q_object(o)?),
        Some(Value::String(s)) if s.trim_start().starts_with('{') => {
            let o: Map<String, Value> =
                serde_json::from_str(s).map_err(|_| CkanError::validation("q", "Must be a string or a JSON object"))?;
            (None, q_object(&o)?)
        }
        Some(Value::String(s)) => (Some(s.clone()), vec![]),
        Some(_) => return Err(CkanError::validation("q", "Must be a string or a JSON object")),
    };
    // CKAN 2.10+: estimate the total past this many rows (an exact count here is within it).
    let mut estimate_above = None;
    if let Some(v) = m.get("total_estimation_threshold")
        && !v.is_null()
    {
        let t = param_int(m, "total_estimation_threshold", 0)?;
        if t < 0 {
            return Err(CkanError::validation("total_estimation_threshold", "Must be a natural number"));
        }
        estimate_above = Some(t as u64);
    }
    let limit = param_int(m, "limit", 100)?;
    if !(0..=32_000).contains(&limit) {
        return Err(CkanError::validation("limit", "Must be between 0 and 32000"));
    }
    let offset = param_int(m, "offset", 0)?;
    if offset < 0 {
        return Err(CkanError::validation("offset", "Must be a natural number"));
    }
    let filters: Map<String, Value> = match m.get("filters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => Map::new(),
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|_| CkanError::validation("filters", "Must be a JSON object"))?
        }
        Some(_) => return Err(CkanError::validation("filters", "Must be a JSON object")),
    };
    let mut clauses = Vec::new();
    for (k, v) in &filters {
        let name = format!("\"{}\"", k.replace('"', ""));
        match v {
            Value::Array(vs) => {
                let lits: Option<Vec<String>> = vs.iter().map(ckan_literal).collect();
                let lits = lits.ok_or_else(|| CkanError::validation("filters", "Values must be strings or numbers"))?;
                clauses.push(format!("{name} IN ({})", lits.join(", ")));
            }
            other => clauses.push(format!(
                "{name} = {}",
                ckan_literal(other)
                    .ok_or_else(|| CkanError::validation("filters", "Values must be strings or numbers"))?
            )),
        }
    }
    let fields = match m.get("fields") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(",")),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(CkanError::validation("fields", "Must be a list or a comma-separated string")),
    };
    // `_id` (CKAN's row id: here the row's position in the read's stable order, counted from
    // 1) is always there unless `fields` leaves it out; it is not an item of the table.
    let with_id = fields.as_deref().is_none_or(|f| f.split(',').any(|x| x.trim() == "_id"));
    let fields = fields.map(|f| f.split(',').filter(|x| x.trim() != "_id").collect::<Vec<_>>().join(","));
    let fields = fields.filter(|f| !f.trim().is_empty());
    let sort = param_str(m, "sort").map(|s| {
        s.split(',')
            .map(|part| {
                let mut it = part.split_whitespace();
                let f = it.next().unwrap_or("").trim_matches('"');
                if it.next().is_some_and(|d| d.eq_ignore_ascii_case("desc")) { format!("-{f}") } else { f.to_string() }
            })
            // `_id` is the stable order every read ends with anyway.
            .filter(|f| f.trim_start_matches('-') != "_id")
            .collect::<Vec<_>>()
            .join(",")
    });
    let include_total = m.get("include_total").map(|_| param_bool(m, "include_total")).unwrap_or(true);
    // citydata's extension: the table version to read. `_links.next` carries the version the
    // first page was read at, so that a client following it sees every row exactly once even
    // when the table changes between pages.
    let version = match m.get("version") {
        None | Some(Value::Null) => None,
        Some(_) => Some(param_int(m, "version", 0)?),
    };
    let params = citydata_core::reads::RowsParams {
        fields,
        filter: (!clauses.is_empty()).then(|| clauses.join(" AND ")),
        sort,
        limit: Some(limit.max(1) as u32),
        cursor: None,
        offset: Some(offset as usize),
        version,
        count: include_total.then(|| if estimate_above.is_some() { "estimated" } else { "exact" }.to_string()),
        estimate_above,
        q,
        q_fields,
    };
    // The request's id and client, so the read's audit entry names them like any REST read.
    let r = state.core.read_rows(meta, p, &key, &params).await.map_err(|e| match e {
        CoreError::Denied(reason) => CkanError {
            status: StatusCode::FORBIDDEN,
            kind: "Authorization Error",
            message: reason.message().into(),
            fields: Map::new(),
            retry_after: None,
        },
        CoreError::NotFound(_) => CkanError::not_found("Resource"),
        other => CkanError::from(other),
    })?;
    let ckan_type = |t: &str| match t {
        "integer" => "int",
        "decimal" | "money" => "numeric",
        "boolean" => "bool",
        "date" => "date",
        "datetime" => "timestamp",
        _ => "text",
    };
    let mut fields: Vec<Value> = r
        .fields
        .iter()
        .map(|f| json!({"id": f.name, "type": ckan_type(&f.data_type), "info": {"label": f.title, "mask": f.mask}}))
        .collect();
    let mut names: Vec<String> = r.fields.iter().map(|f| f.name.clone()).collect();
    if with_id {
        fields.insert(0, json!({"id": "_id", "type": "int"}));
        names.insert(0, "_id".into());
    }
    let read_version = r.version;
    let mut rows = if limit == 0 { vec![] } else { r.rows };
    if with_id {
        for (i, row) in rows.iter_mut().enumerate() {
            if let Value::Object(o) = row {
                let mut with = Map::with_capacity(o.len() + 1);
                with.insert("_id".into(), json!(offset + i as i64 + 1));
                with.extend(std::mem::take(o));
                *o = with;
            }
        }
    }
    let format = param_str(m, "records_format").unwrap_or_else(|| "objects".into());
    let records = match format.as_str() {
        "objects" => Value::Array(rows),
        "lists" => Value::Array(
            rows.iter()
                .map(|o| Value::Array(names.iter().map(|n| o.get(n).cloned().unwrap_or(Value::Null)).collect()))
                .collect(),
        ),
        "csv" | "tsv" => {
            // Cells a spreadsheet would run as formulas get a leading ' unless `csv_safe=false`.
            let safe = !m.get("csv_safe").is_some_and(|v| v == &json!(false) || v == &json!("false"));
            let sep = if format == "csv" { "," } else { "\t" };
            // As CKAN's DataStore writes them (PostgreSQL's COPY … CSV): RFC 4180 quoting of
            // cells holding the separator, a quote, CR or LF; NULL empty, an empty string "";
            // every record ends with a newline.
            let mut text = String::new();
            for o in &rows {
                let cells: Vec<String> = names
                    .iter()
                    .map(|n| {
                        let cell = match o.get(n) {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Null) | None => return String::new(),
                            Some(v) => v.to_string(),
                        };
                        let cell = if safe { citydata_core::csv_safe::neutralize(&cell).into_owned() } else { cell };
                        if cell.is_empty() || cell.contains([sep.as_bytes()[0] as char, '"', '\n', '\r']) {
                            format!("\"{}\"", cell.replace('"', "\"\""))
                        } else {
                            cell
                        }
                    })
                    .collect();
                text.push_str(&cells.join(sep));
                text.push('\n');
            }
            Value::String(text)
        }
        _ => return Err(CkanError::validation("records_format", "Must be objects, lists, csv or tsv")),
    };
    let mut result = json!({
        "resource_id": id,
        "fields": fields,
        "records": records,
        "records_format": format,
        "limit": limit,
        "offset": offset,
        "_links": {
            "start": datastore_link(base, m, None, None),
            "next": datastore_link(base, m, Some(offset + limit), read_version),
        },
    });
    if offset > 0 {
        result["_links"]["prev"] = json!(datastore_link(base, m, Some((offset - limit).max(0)), read_version));
    }
    if let Some(v) = read_version {
        result["version"] = json!(v);
    }
    if include_total {
        result["total"] = json!(r.total);
        result["total_was_estimated"] = json!(r.total_estimated);
    }
    Ok(result)
}
