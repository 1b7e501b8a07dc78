//! Whole-project reads the management API's write checks need: every cohort (flag writes
//! check against the project's snapshot).

use vexil_store::{Cohort, Page, ProjectId};

use crate::error::ApiError;
use crate::state::AppState;

/// Every non-deleted cohort of the project (static ones included).
pub async fn all_cohorts(state: &AppState, project: ProjectId) -> Result<Vec<Cohort>, ApiError> {
    Ok(state
        .store
        .list_cohorts(project, Page::new(u32::MAX, 0))
        .await?
        .items)
}
