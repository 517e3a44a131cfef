//! How fast a department answers requests, for the evaluation dashboard.

use super::*;

/// Response times of a department as provider (for the evaluation dashboard).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseTimes {
    pub department: String,
    /// Requests decided by a person (not the immediate system decisions).
    pub decided: usize,
    pub median_workdays: Option<u32>,
    pub p90_workdays: Option<u32>,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
    pub pending: usize,
    pub overdue: usize,
}

fn percentile<T: Copy + PartialOrd>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied()
}

impl Core {
    /// Median and 90th-percentile response times of `dept`'s answers, in working days and hours.
    pub async fn response_times(&self, dept: &str) -> Result<ResponseTimes, CoreError> {
        let d = self.get_department(dept).await?;
        let all = self.store.list_requests(None, None, Some(d.code.as_str())).await?;
        let now = Utc::now();
        let mut days: Vec<u32> = Vec::new();
        let mut hours: Vec<f64> = Vec::new();
        let (mut pending, mut overdue) = (0, 0);
        for r in &all {
            match (&r.decided_at, r.decided_by.as_deref(), r.state) {
                (_, _, RequestState::Pending) => {
                    pending += 1;
                    if r.due_at < now {
                        overdue += 1;
                    }
                }
                (Some(at), Some(by), RequestState::Approved | RequestState::Rejected) if by != "system" => {
                    days.push(self.config.calendar.workdays_between(r.created_at, *at));
                    hours.push((*at - r.created_at).num_seconds() as f64 / 3600.0);
                }
                _ => {}
            }
        }
        days.sort_unstable();
        hours.sort_by(|a, b| a.total_cmp(b));
        Ok(ResponseTimes {
            department: d.code.to_string(),
            decided: days.len(),
            median_workdays: percentile(&days, 0.5),
            p90_workdays: percentile(&days, 0.9),
            median_hours: percentile(&hours, 0.5),
            p90_hours: percentile(&hours, 0.9),
            pending,
            overdue,
        })
    }
}
