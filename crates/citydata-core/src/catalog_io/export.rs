//! The catalog as a spreadsheet (XLSX with two sheets) or CSV.

use super::*;

fn join(v: impl IntoIterator<Item = String>) -> String {
    v.into_iter().collect::<Vec<_>>().join("；")
}

fn yes_no(b: bool) -> String {
    if b { "是".into() } else { "否".into() }
}

fn resource_cells(r: &Resource, names: &HashMap<String, String>) -> Vec<String> {
    let c = &r.content;
    RESOURCE_COLUMNS
        .iter()
        .map(|(k, _)| match *k {
            "code" => c.code.to_string(),
            "name" => c.name.clone(),
            "abstract" => c.summary.clone(),
            "provider" => c.provider.to_string(),
            "provider_name" => names.get(c.provider.as_str()).cloned().unwrap_or_default(),
            "class" => c.classification.class.title().into(),
            "theme" => vocab::theme(&c.classification.theme).map(|t| t.name.to_string()).unwrap_or_default(),
            "format_category" => c.format.category.title().into(),
            "format_type" => c.format.kind.clone(),
            "share_type" => c.share.kind.title().into(),
            "share_conditions" => c.share.conditions.clone().unwrap_or_default(),
            "share_method" => c.share.method.title().into(),
            "open_type" => c.open.kind.title().into(),
            "open_conditions" => c.open.conditions.clone().unwrap_or_default(),
            "update_cycle" => c.update_cycle.title().into(),
            "publish_date" => c.publish_date.map(|d| d.to_string()).unwrap_or_default(),
            "related" => join(c.related.iter().map(|x| x.to_string())),
            "security_level" => c.security_level.title().into(),
            "tags" => join(c.tags.iter().cloned()),
            "license" => c.license.clone().unwrap_or_default(),
            "regions" => join(c.regions.iter().map(|x| x.to_string())),
            "contact" => c.contact.clone().unwrap_or_default(),
            "consistency" => join(c.consistency.iter().map(|x| x.to_spec())),
            "quality_rules" => citydata_domain::quality::rules_cell(&c.quality_rules),
            "slug" => c.slug.as_str().to_string(),
            "state" => r.state.title().into(),
            _ => String::new(),
        })
        .collect()
}

fn item_cells(r: &Resource, i: usize) -> Vec<String> {
    let it = &r.content.items[i];
    ITEM_COLUMNS
        .iter()
        .map(|(k, _)| match *k {
            "code" => r.content.code.to_string(),
            "seq" => (i + 1).to_string(),
            "name" => it.name.to_string(),
            "title" => it.title.clone(),
            "data_type" => it.data_type.title().into(),
            "length" => it.length.map(|l| l.to_string()).unwrap_or_default(),
            "unit" => it.unit.clone().unwrap_or_default(),
            "required" => yes_no(it.required),
            "key" => yes_no(it.key),
            "sensitivity" => it.sensitivity.title().into(),
            "validator" => it.validator.as_ref().map(|v| v.to_spec()).unwrap_or_default(),
            "public" => it.public.map(|p| p.title().to_string()).unwrap_or_default(),
            "description" => it.description.clone().unwrap_or_default(),
            _ => String::new(),
        })
        .collect()
}

fn xlsx_error(e: rust_xlsxwriter::XlsxError) -> CoreError {
    CoreError::Internal(format!("xlsx: {e}"))
}

impl Core {
    /// Every resource the caller may see, in code order.
    pub async fn visible_catalog(&self, principal: Option<&Principal>) -> Result<Vec<Resource>, CoreError> {
        let f = ResourceFilter::new(audience(principal));
        let mut all = Vec::new();
        loop {
            let page = self.store.list_resources(&f, 1000, all.len() as u64).await?;
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        all.sort_by(|a, b| a.content.code.cmp(&b.content.code));
        Ok(all)
    }

    /// The catalog the caller may see as a workbook or a flat CSV (UTF-8 with BOM, for Excel).
    /// With `csv_safe`, cells a spreadsheet would run as formulas get a leading `'`
    /// ([`crate::csv_safe`]); import takes it off again.
    pub async fn export_catalog(
        &self,
        principal: Option<&Principal>,
        format: CatalogFormat,
        csv_safe: bool,
    ) -> Result<Vec<u8>, CoreError> {
        let resources = self.visible_catalog(principal).await?;
        let names = self.department_names().await?;
        let safe = |cells: Vec<String>| crate::csv_safe::neutralize_cells(cells, csv_safe);
        let resource_cells = |r: &Resource, n: &HashMap<String, String>| safe(resource_cells(r, n));
        let item_cells = |r: &Resource, i: usize| safe(item_cells(r, i));
        match format {
            CatalogFormat::Xlsx => {
                let mut wb = rust_xlsxwriter::Workbook::new();
                let bold = rust_xlsxwriter::Format::new().set_bold().set_background_color("#DDEBF7");
                let ws = wb.add_worksheet().set_name(RESOURCE_SHEET).map_err(xlsx_error)?;
                for (c, (_, h)) in RESOURCE_COLUMNS.iter().enumerate() {
                    ws.write_string_with_format(0, c as u16, *h, &bold).map_err(xlsx_error)?;
                    ws.set_column_width(c as u16, if *h == "信息资源摘要" { 40 } else { 16 }).map_err(xlsx_error)?;
                }
                ws.set_freeze_panes(1, 0).map_err(xlsx_error)?;
                for (r, res) in resources.iter().enumerate() {
                    for (c, v) in resource_cells(res, &names).iter().enumerate() {
                        ws.write_string((r + 1) as u32, c as u16, v).map_err(xlsx_error)?;
                    }
                }
                let ws = wb.add_worksheet().set_name(ITEM_SHEET).map_err(xlsx_error)?;
                for (c, (_, h)) in ITEM_COLUMNS.iter().enumerate() {
                    ws.write_string_with_format(0, c as u16, *h, &bold).map_err(xlsx_error)?;
                    ws.set_column_width(c as u16, 14).map_err(xlsx_error)?;
                }
                ws.set_freeze_panes(1, 0).map_err(xlsx_error)?;
                let mut row = 1u32;
                for res in &resources {
                    for i in 0..res.content.items.len() {
                        for (c, v) in item_cells(res, i).iter().enumerate() {
                            ws.write_string(row, c as u16, v).map_err(xlsx_error)?;
                        }
                        row += 1;
                    }
                }
                wb.save_to_buffer().map_err(xlsx_error)
            }
            CatalogFormat::Csv => {
                let mut out = Vec::from(&b"\xEF\xBB\xBF"[..]);
                {
                    let mut w = csv::Writer::from_writer(&mut out);
                    let mut header: Vec<String> = RESOURCE_COLUMNS.iter().map(|(_, h)| h.to_string()).collect();
                    header.extend(ITEM_COLUMNS.iter().skip(1).map(|(_, h)| csv_item_header(h)));
                    w.write_record(&header).map_err(|e| CoreError::Internal(e.to_string()))?;
                    for res in &resources {
                        let rc = resource_cells(res, &names);
                        let n = res.content.items.len().max(1);
                        for i in 0..n {
                            let mut rec = rc.clone();
                            if i < res.content.items.len() {
                                rec.extend(item_cells(res, i).into_iter().skip(1));
                            } else {
                                rec.extend(std::iter::repeat_n(String::new(), ITEM_COLUMNS.len() - 1));
                            }
                            w.write_record(&rec).map_err(|e| CoreError::Internal(e.to_string()))?;
                        }
                    }
                    w.flush().map_err(|e| CoreError::Internal(e.to_string()))?;
                }
                Ok(out)
            }
        }
    }
}
