//! `GET feature_flags/{id or key}/calls/`: the latest `$feature_flag_called` events of a flag
//! (or of a key no flag has — SDKs report calls of missing flags too), with what
//! current SDKs report about each call — where the answer came from (`locally_evaluated`,
//! `request_id`), the flag version it saw, the reason, errors (`$feature_flag_error`), whether
//! the flag had an experiment — typed, and the event's properties as sent. Flag history and
//! staleness read the same store ([`vexil_store::Store::flag_calls`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use vexil_store::FlagCallRecord;

use super::paging::offset_page;
use crate::error::ApiError;
use crate::extract::auth::ManagedProject;
use crate::extract::{Params, RawId};
use crate::response::json_response;
use crate::state::AppState;

/// `?limit=` default: the latest 100 calls.
const DEFAULT_LIMIT: u32 = 100;

/// The handler.
pub async fn flag_calls(
    State(state): State<AppState>,
    caller: ManagedProject,
    RawId(id): RawId,
    params: Params,
) -> Result<Response, ApiError> {
    let project = caller.project.id;
    let flag = match id.parse::<i64>() {
        Ok(id) => state.store.get_flag(project, id).await?,
        Err(_) => None,
    };
    // Not a flag id: the segment is the key the SDKs reported.
    let key = flag.map_or(id, |f| f.key);
    let limit = offset_page(&params, DEFAULT_LIMIT).limit;
    let calls = state.store.flag_calls(project, &key, limit).await?;
    let results: Vec<Value> = calls.iter().map(call_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "results": results }),
    ))
}

fn call_json(call: &FlagCallRecord) -> Value {
    let d = call.details();
    json!({
        "uuid": call.uuid,
        "flag_key": call.flag_key,
        "distinct_id": call.distinct_id,
        "response": call.response,
        "timestamp": call.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "locally_evaluated": d.locally_evaluated,
        "flag_id": d.flag_id,
        "flag_version": d.flag_version,
        "reason": d.reason,
        "request_id": d.request_id,
        "evaluated_at": d.evaluated_at,
        "has_experiment": d.has_experiment,
        "errors": d.errors,
        "payload": d.payload,
        "lib": d.lib,
        "lib_version": d.lib_version,
        "properties": call.properties,
    })
}
