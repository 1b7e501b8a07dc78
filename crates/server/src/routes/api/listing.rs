//! Whole-project reads the management API's write checks need: every flag, every cohort.

use vexil_store::{Cohort, FeatureFlag, FlagQuery, Page, ProjectId};

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

/// Every non-deleted flag of the project.
pub async fn all_flags(state: &AppState, project: ProjectId) -> Result<Vec<FeatureFlag>, ApiError> {
    let query = FlagQuery {
        page: Page::new(u32::MAX, 0),
        ..FlagQuery::default()
    };
    Ok(state.store.list_flags(project, &query).await?.items)
}
