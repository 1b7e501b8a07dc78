//! The OpenAPI 3 document of the management API (served at `/api/schema/`): every route under
//! both mount points, its parameters, request and response schemas, the error shape and the
//! personal-key authentication. Hand-written next to the routes it describes
//! (`routes/api/`); keep the two in step.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn param_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

fn json_body(schema: Value) -> Value {
    json!({"content": {"application/json": {"schema": schema}}})
}

fn ok(description: &str, schema: Value) -> Value {
    let mut r = json_body(schema);
    r["description"] = json!(description);
    r
}

fn error(description: &str) -> Value {
    ok(description, schema_ref("Error"))
}

/// One operation: `responses` gets the shared 401/404 errors added.
fn op(
    id: &str,
    tag: &str,
    summary: &str,
    params: &[&str],
    body: Option<Value>,
    responses: Value,
) -> Value {
    let mut responses = responses;
    if let Some(r) = responses.as_object_mut() {
        r.entry("401")
            .or_insert_with(|| error("No, unknown or non-personal credential."));
        if params.contains(&"project_id") {
            r.entry("404")
                .or_insert_with(|| error("Unknown id, or a project the key does not belong to."));
        }
    }
    let mut o = json!({
        "operationId": id,
        "tags": [tag],
        "summary": summary,
        "parameters": params.iter().map(|p| param_ref(p)).collect::<Vec<_>>(),
        "responses": responses,
    });
    if let Some(body) = body {
        o["requestBody"] = body;
    }
    o
}

fn list_params() -> Vec<&'static str> {
    vec!["project_id", "limit", "offset"]
}

/// The project-scoped paths under one prefix (`projects` or `environments`).
fn project_paths(prefix: &str) -> Map<String, Value> {
    let p = |path: &str| format!("/api/{prefix}/{{project_id}}/{path}");
    let id = |name: &str| format!("{prefix}_{name}");
    let flag_list_params = [
        list_params(),
        vec![
            "search",
            "active",
            "type",
            "created_by_id",
            "tags",
            "evaluation_runtime",
            "excluded_properties",
            "order",
        ],
    ]
    .concat();
    let flag_write = json_body(schema_ref("FeatureFlagWrite"));
    let mut paths = Map::new();
    paths.insert(
        p("feature_flags/"),
        json!({
            "get": op(&id("feature_flags_list"), "feature_flags", "List non-deleted flags, newest first.",
                &flag_list_params, None,
                json!({"200": ok("A page of flags.", schema_ref("PaginatedFeatureFlagList"))})),
            "post": op(&id("feature_flags_create"), "feature_flags",
                "Create a flag. `key` and `filters` with at least one condition set are required.",
                &["project_id"], Some(flag_write.clone()),
                json!({"201": ok("The created flag.", schema_ref("FeatureFlag")),
                       "400": error("Validation failed; `attr` names the field.")})),
        }),
    );
    paths.insert(
        p("feature_flags/{id}/"),
        json!({
            "get": op(&id("feature_flags_retrieve"), "feature_flags", "One flag (deleted flags too).",
                &["project_id", "id"], None,
                json!({"200": ok("The flag.", schema_ref("FeatureFlag"))})),
            "patch": op(&id("feature_flags_partial_update"), "feature_flags",
                "Change some fields; bumps `version`. Soft-delete with `{\"deleted\": true}`. A stale `version` is a 409 (with `original_flag`: only when a field you change was also changed by someone else). `filters` without `groups` is ignored.",
                &["project_id", "id"], Some(flag_write.clone()),
                json!({"200": ok("The updated flag.", schema_ref("FeatureFlag")),
                       "400": error("Validation failed; `attr` names the field."),
                       "409": error("The flag changed since the `version` you sent.")})),
            "put": op(&id("feature_flags_update"), "feature_flags",
                "As PATCH, with `key` required.",
                &["project_id", "id"], Some(flag_write),
                json!({"200": ok("The updated flag.", schema_ref("FeatureFlag")),
                       "400": error("Validation failed; `attr` names the field."),
                       "409": error("The flag changed since the `version` you sent.")})),
            "delete": op(&id("feature_flags_destroy"), "feature_flags",
                "Always refused: flags are never hard-deleted. Soft-delete with PATCH `{\"deleted\": true}`.",
                &["project_id", "id"], None,
                json!({"405": error("Method not allowed.")})),
        }),
    );
    paths.insert(
        p("feature_flags/{id}/activity/"),
        json!({"get": op(&id("feature_flags_activity_retrieve"), "feature_flags",
            "The flag's activity log, newest first.", &["project_id", "id", "activity_limit", "page"], None,
            json!({"200": ok("A page of entries.", schema_ref("PaginatedActivityLog"))}))}),
    );
    paths.insert(
        p("feature_flags/activity/"),
        json!({"get": op(&id("feature_flags_all_activity_retrieve"), "feature_flags",
            "The activity log of all the project's flags, newest first.", &["project_id", "activity_limit", "page"], None,
            json!({"200": ok("A page of entries.", schema_ref("PaginatedActivityLog"))}))}),
    );
    paths.insert(
        p("feature_flags/{id}/dependent_flags/"),
        json!({"get": op(&id("feature_flags_dependent_flags_retrieve"), "feature_flags",
            "Active flags whose conditions depend on this flag.", &["project_id", "id"], None,
            json!({"200": ok("The dependents.", json!({"type": "array", "items": schema_ref("DependentFlag")}))}))}),
    );
    paths.insert(
        p("feature_flags/{id}/calls/"),
        json!({"get": op(&id("feature_flags_calls_retrieve"), "feature_flags",
            "The latest `$feature_flag_called` events of a flag (by id) or flag key, newest first, with the facts SDKs report (typed) and the event's properties.",
            &["project_id", "id", "limit"], None,
            json!({"200": ok("The calls.", json!({"type": "object", "properties": {
                "results": {"type": "array", "items": schema_ref("FlagCall")}}}))}))}),
    );
    paths.insert(
        p("feature_flags/evaluation_reasons/"),
        json!({"get": op(&id("feature_flags_evaluation_reasons_retrieve"), "feature_flags",
            "Every flag's value and reason for one person (stored properties, cohorts and groups).",
            &["project_id", "distinct_id", "groups"], None,
            json!({"200": ok("Keyed by flag key.", schema_ref("EvaluationReasons")),
                   "400": error("distinct_id missing or groups not a JSON object.")}))}),
    );
    paths.insert(
        p("feature_flags/bulk_keys/"),
        json!({"post": op(&id("feature_flags_bulk_keys_create"), "feature_flags",
            "Keys of the given flag ids (unknown and deleted ids are left out).", &["project_id"],
            Some(json_body(json!({"type": "object", "required": ["ids"],
                "properties": {"ids": {"type": "array", "items": {"type": "integer"}}}}))),
            json!({"200": ok("`{\"keys\": {\"<id>\": \"<key>\"}}`.", json!({"type": "object",
                "properties": {"keys": {"type": "object", "additionalProperties": {"type": "string"}}}})),
                   "400": error("ids missing or not a list of ids.")}))}),
    );
    paths.insert(
        p("feature_flags/local_evaluation/"),
        json!({"get": op(&id("feature_flags_local_evaluation_retrieve"), "feature_flags",
            "The local-evaluation definitions (flags, group type mapping, cohorts), as /flags/definitions serves them.",
            &["project_id"], None,
            json!({"200": ok("The definitions.", schema_ref("Definitions"))}))}),
    );
    paths.insert(
        p("cohorts/"),
        json!({
            "get": op(&id("cohorts_list"), "cohorts", "List non-deleted cohorts, newest first.",
                &list_params(), None,
                json!({"200": ok("A page of cohorts.", schema_ref("PaginatedCohortList"))})),
            "post": op(&id("cohorts_create"), "cohorts",
                "Create a cohort. Static cohorts take members as a multipart `csv` file or as `distinct_ids` (JSON).",
                &["project_id"], Some(cohort_body()),
                json!({"201": ok("The created cohort.", schema_ref("Cohort")),
                       "400": error("Validation failed (self, unknown or cyclic cohort references, bad filters, missing name).")})),
        }),
    );
    paths.insert(
        p("cohorts/{id}/"),
        json!({
            "get": op(&id("cohorts_retrieve"), "cohorts", "One cohort.", &["project_id", "id"], None,
                json!({"200": ok("The cohort.", schema_ref("Cohort"))})),
            "patch": op(&id("cohorts_partial_update"), "cohorts",
                "Change name, description, filters (dynamic), `deleted` (soft delete); add members to a static cohort (`csv` or `distinct_ids`). A stale `version` is a 409.",
                &["project_id", "id"], Some(cohort_body()),
                json!({"200": ok("The updated cohort.", schema_ref("Cohort")),
                       "400": error("Validation failed."),
                       "409": error("The cohort changed since the `version` you sent.")})),
        }),
    );
    paths.insert(
        p("cohorts/{id}/persons/"),
        json!({"get": op(&id("cohorts_persons_retrieve"), "cohorts",
            "A static cohort's members as persons (a listed id without a person yet has `id: null`).",
            &["project_id", "id", "limit", "offset"], None,
            json!({"200": ok("A page of members.", schema_ref("PaginatedPersonList")),
                   "400": error("The cohort is dynamic.")}))}),
    );
    paths.insert(
        p("persons/"),
        json!({"get": op(&id("persons_list"), "persons", "Look a person up by distinct id.",
            &["project_id", "distinct_id"], None,
            json!({"200": ok("`results` is empty when nobody has the id.", schema_ref("PersonList")),
                   "400": error("distinct_id missing (listing every person is not supported).")}))}),
    );
    paths.insert(
        p("persons/{id}/"),
        json!({"delete": op(&id("persons_destroy"), "persons",
            "Delete a person (by uuid) with their distinct ids and hash-key overrides.",
            &["project_id", "person_uuid"], None,
            json!({"202": {"description": "Deleted."}}))}),
    );
    let feature_write = json_body(schema_ref("EarlyAccessFeatureWrite"));
    paths.insert(
        p("early_access_feature/"),
        json!({
            "get": op(&id("early_access_feature_list"), "early_access_features",
                "Every early access feature of the project, oldest first (one page).",
                &["project_id"], None,
                json!({"200": ok("The features.", schema_ref("PaginatedEarlyAccessFeatureList"))})),
            "post": op(&id("early_access_feature_create"), "early_access_features",
                "Create a feature. `name` and `stage` are required. Without `feature_flag_id` a flag is created (key slugified from the name, rolled out to nobody); in an active stage (alpha, beta, general-availability) the flag gets the `feature_enrollment` gate, so a person whose `$feature_enrollment/<flag key>` is true gets it.",
                &["project_id"], Some(feature_write.clone()),
                json!({"201": ok("The created feature.", schema_ref("EarlyAccessFeature")),
                       "400": error("Validation failed (an unknown, deleted, group-based, multivariate or already linked flag; a bad stage or URL); `attr` names the field.")})),
        }),
    );
    paths.insert(
        p("early_access_feature/{id}/"),
        json!({
            "get": op(&id("early_access_feature_retrieve"), "early_access_features", "One feature.",
                &["project_id", "feature_uuid"], None,
                json!({"200": ok("The feature.", schema_ref("EarlyAccessFeature"))})),
            "patch": op(&id("early_access_feature_partial_update"), "early_access_features",
                "Change some fields. Entering an active stage adds the flag's enrollment gate, leaving them removes it; `stage: general-availability` with `rollout_to_all: true` rolls the flag out to everyone.",
                &["project_id", "feature_uuid"], Some(feature_write),
                json!({"200": ok("The updated feature.", schema_ref("EarlyAccessFeature")),
                       "400": error("Validation failed; `attr` names the field.")})),
            "delete": op(&id("early_access_feature_destroy"), "early_access_features",
                "Delete the feature; its flag stays, without the enrollment gate.",
                &["project_id", "feature_uuid"], None,
                json!({"204": {"description": "Deleted."}})),
        }),
    );
    paths.insert(
        p("keys/{kind}/rotate/"),
        json!({"post": op(&id("keys_rotate"), "keys",
            "Issue a new secret (phs_…) or personal (phx_…) key for the project and return it once (`Cache-Control: no-store`); the old key is refused from the next request on. Also lifts a revocation.",
            &["project_id", "key_kind"], None,
            json!({"200": ok("The new key.", schema_ref("IssuedKey")),
                   "400": error("Unknown key kind.")}))}),
    );
    paths.insert(
        p("keys/{kind}/revoke/"),
        json!({"post": op(&id("keys_revoke"), "keys",
            "Revoke the project's secret or personal key without a replacement: no key of that kind works until the next rotation (revoking the personal key locks this API out; `vexil project rotate-key` issues a new one).",
            &["project_id", "key_kind"], None,
            json!({"200": ok("Revoked.", schema_ref("RevokedKey")),
                   "400": error("Unknown key kind.")}))}),
    );
    paths
}

fn cohort_body() -> Value {
    json!({"content": {
        "application/json": {"schema": schema_ref("CohortWrite")},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "is_static": {"type": "boolean"},
            "filters": {"type": "string", "description": "JSON text"},
            "csv": {"type": "string", "format": "binary",
                    "description": "One distinct id per line in the first column; a header row naming distinct_id (its column is used), person_id or email is skipped."}
        }}}
    }})
}

fn parameters() -> Value {
    let query = |name: &str, schema: Value, description: &str| json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description});
    let int = json!({"type": "integer", "minimum": 0});
    let string = json!({"type": "string"});
    json!({
        "project_id": {"name": "project_id", "in": "path", "required": true, "schema": {"type": "string"},
            "description": "The project id, or `@current` for the key's project."},
        "id": {"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}},
        "key_kind": {"name": "kind", "in": "path", "required": true,
            "schema": {"type": "string", "enum": ["secret", "personal"]},
            "description": "`secret` (phs_…, local evaluation) or `personal` (phx_…, this API and local evaluation)."},
        "feature_uuid": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"},
            "description": "The early access feature's id."},
        "person_uuid": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"},
            "description": "The person's uuid."},
        "limit": query("limit", int.clone(), "Rows per page (default 100, at most 1000)."),
        "offset": query("offset", int.clone(), "Rows to skip."),
        "activity_limit": query("limit", int.clone(), "Entries per page (default 10, at most 1000)."),
        "page": query("page", json!({"type": "integer", "minimum": 1}), "1-based page number."),
        "search": query("search", string.clone(), "Case-insensitive substring of key or name."),
        "active": query("active", json!({"type": "string", "enum": ["true", "false", "STALE"]}),
            "Active, inactive, or stale flags (fully rolled out and unused for 30 days)."),
        "type": query("type", json!({"type": "string", "enum": ["boolean", "multivariant", "experiment"]}), "Flag type."),
        "created_by_id": query("created_by_id", json!({"type": "integer"}), "Creator's user id."),
        "tags": query("tags", string.clone(), "JSON list of tags; flags with any of them."),
        "evaluation_runtime": query("evaluation_runtime",
            json!({"type": "string", "enum": ["server", "client", "all"]}), "Flags with this runtime."),
        "excluded_properties": query("excluded_properties", string.clone(), "JSON list of flag keys to leave out."),
        "order": query("order", json!({"type": "string", "enum": ["key", "-key", "name", "-name", "created_at", "-created_at",
            "updated_at", "-updated_at", "active", "-active", "id", "-id"]}), "Sort field (default -created_at)."),
        "distinct_id": {"name": "distinct_id", "in": "query", "required": true, "schema": string},
        "groups": query("groups", json!({"type": "string"}), "JSON object of group type → group key."),
    })
}

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

fn schemas() -> Value {
    let string_list = json!({"type": "array", "items": {"type": "string"}});
    let timestamp = json!({"type": "string", "format": "date-time"});
    let page_of = |item: &str| {
        json!({"type": "object", "required": ["count", "next", "previous", "results"], "properties": {
            "count": {"type": "integer"},
            "next": nullable(json!({"type": "string", "format": "uri"})),
            "previous": nullable(json!({"type": "string", "format": "uri"})),
            "results": {"type": "array", "items": schema_ref(item)}}})
    };
    let mut schemas = json!({
        "IssuedKey": {"type": "object", "required": ["project_id", "kind", "key"], "properties": {
            "project_id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["secret", "personal"]},
            "key": {"type": "string", "description": "The new key, shown once: only its hash is stored."}}},
        "RevokedKey": {"type": "object", "required": ["project_id", "kind", "revoked"], "properties": {
            "project_id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["secret", "personal"]},
            "revoked": {"type": "boolean", "enum": [true]}}},
        "Error": {"type": "object", "required": ["type", "code", "detail", "attr"], "properties": {
            "type": {"type": "string", "enum": ["validation_error", "authentication_error", "invalid_request", "server_error"]},
            "code": {"type": "string", "description": "invalid_input, required, unique, invalid_key, invalid_value, invalid_date, invalid_regex, cohort_does_not_exist, parse_error, not_authenticated, authentication_failed, permission_denied, not_found, method_not_allowed, conflict, …"},
            "detail": {"type": "string"},
            "attr": nullable(json!({"type": "string", "description": "The field at fault, e.g. key or filters.groups[0].properties[1].value."}))}},
        "User": {"type": "object", "properties": {
            "id": {"type": "integer"}, "uuid": {"type": "string", "format": "uuid"},
            "distinct_id": {"type": "string"}, "email": {"type": "string"},
            "first_name": {"type": "string", "description": "The personal key's label."}}},
        "PropertyFilter": {"type": "object", "properties": {
            "key": {"description": "Property key; `id` for cohorts; the flag id for flag dependencies."},
            "type": {"type": "string", "enum": ["person", "group", "cohort", "flag"]},
            "operator": {"type": "string"},
            "value": {},
            "group_type_index": {"type": "integer"}}},
        "Filters": {"type": "object", "required": ["groups"], "properties": {
            "groups": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
                "properties": {"type": "array", "items": schema_ref("PropertyFilter")},
                "rollout_percentage": nullable(json!({"type": "number", "minimum": 0, "maximum": 100})),
                "variant": nullable(json!({"type": "string"})),
                "aggregation_group_type_index": nullable(json!({"type": "integer"}))}}},
            "multivariate": nullable(json!({"type": "object", "properties": {"variants": {"type": "array", "items": {
                "type": "object", "required": ["key", "rollout_percentage"], "properties": {
                    "key": {"type": "string"}, "name": {"type": "string"},
                    "rollout_percentage": {"type": "number"}}}}}})),
            "aggregation_group_type_index": nullable(json!({"type": "integer", "minimum": 0, "maximum": 4})),
            "payloads": {"type": "object", "additionalProperties": {"type": "string"},
                "description": "Keyed by variant (or \"true\"); object values are stored as their JSON text."}}},
        "FeatureFlag": {"type": "object", "required": ["id", "key", "name", "filters", "active"], "properties": {
            "id": {"type": "integer"}, "team_id": {"type": "integer"}, "key": {"type": "string"},
            "name": {"type": "string"}, "filters": schema_ref("Filters"),
            "active": {"type": "boolean"}, "deleted": {"type": "boolean"}, "version": {"type": "integer"},
            "ensure_experience_continuity": {"type": "boolean"},
            "created_at": timestamp, "updated_at": timestamp,
            "created_by": nullable(schema_ref("User")), "last_modified_by": nullable(schema_ref("User")),
            "tags": string_list, "evaluation_tags": string_list, "evaluation_contexts": string_list,
            "evaluation_runtime": {"type": "string", "enum": ["server", "client", "all"]},
            "bucketing_identifier": nullable(json!({"type": "string", "enum": ["distinct_id", "device_id"]})),
            "status": {"type": "string", "enum": ["ACTIVE", "STALE", "DELETED", "UNKNOWN"]},
            "is_remote_configuration": {"type": "boolean"}, "has_encrypted_payloads": {"type": "boolean"},
            "last_called_at": nullable(timestamp.clone()),
            "is_simple_flag": {"type": "boolean"},
            "rollout_percentage": nullable(json!({"type": "number"})),
            "experiment_set": {"type": "array", "items": {}}, "surveys": {"type": "array", "items": {}},
            "features": {"type": "array", "items": {}}, "analytics_dashboards": {"type": "array", "items": {}},
            "usage_dashboard": {"type": "null"}}},
        "FeatureFlagWrite": {"type": "object", "description": "Unknown fields are ignored.", "properties": {
            "key": {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$", "maxLength": 400},
            "name": {"type": "string"},
            "description": {"type": "string", "description": "Used as `name` when `name` is absent."},
            "filters": schema_ref("Filters"),
            "active": {"type": "boolean", "default": true}, "deleted": {"type": "boolean"},
            "ensure_experience_continuity": {"type": "boolean", "default": false},
            "evaluation_runtime": {"type": "string", "enum": ["server", "client", "all"], "default": "all"},
            "evaluation_tags": string_list, "tags": string_list,
            "evaluation_contexts": {"type": "array", "items": {"type": "string"},
                "description": "The current name of `evaluation_tags`; wins when both are sent."},
            "bucketing_identifier": nullable(json!({"type": "string", "enum": ["distinct_id", "device_id"]})),
            "is_remote_configuration": {"type": "boolean"}, "has_encrypted_payloads": {"type": "boolean"},
            "version": {"type": "integer", "description": "The version you started from (updates)."},
            "original_flag": {"type": "object", "description": "The flag as you read it (updates)."}}},
        "PaginatedFeatureFlagList": page_of("FeatureFlag"),
        "FlagCall": {"type": "object", "properties": {
            "uuid": {"type": "string", "format": "uuid"}, "flag_key": {"type": "string"},
            "distinct_id": {"type": "string"}, "response": {}, "timestamp": timestamp.clone(),
            "locally_evaluated": nullable(json!({"type": "boolean"})),
            "flag_id": nullable(json!({"type": "integer"})), "flag_version": nullable(json!({"type": "integer"})),
            "reason": nullable(json!({"type": "string"})), "request_id": nullable(json!({"type": "string"})),
            "evaluated_at": nullable(json!({"type": "integer"})),
            "has_experiment": nullable(json!({"type": "boolean"})),
            "errors": {"type": "array", "items": {"type": "string"},
                "description": "`$feature_flag_error`, split: errors_while_computing_flags, flag_missing, quota_limited, timeout, connection_error, unknown_error, api_error_<status>."},
            "payload": {}, "lib": nullable(json!({"type": "string"})), "lib_version": nullable(json!({"type": "string"})),
            "properties": {"type": "object"}}},
        "DependentFlag": {"type": "object", "properties": {
            "id": {"type": "integer"}, "key": {"type": "string"}, "name": {"type": "string"}}},
        "EvaluationReasons": {"type": "object", "additionalProperties": {"type": "object", "properties": {
            "value": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
            "evaluation": {"type": "object", "properties": {
                "reason": {"type": "string", "description": "condition_match, no_condition_match, out_of_rollout_bound, no_group_type, missing_dependency, disabled, super_condition_value, holdout_condition_value, or an error code."},
                "condition_index": nullable(json!({"type": "integer"})),
                "description": {"type": "string"}}}}}},
        "ActivityLogEntry": {"type": "object", "properties": {
            "id": {"type": "integer"}, "user": nullable(schema_ref("User")),
            "activity": {"type": "string", "enum": ["created", "updated", "deleted"]},
            "scope": {"type": "string", "enum": ["FeatureFlag"]},
            "item_id": {"type": "string"},
            "detail": {"type": "object", "properties": {
                "id": {"type": "string"}, "name": {"type": "string", "description": "The flag key."},
                "short_id": {"type": "null"}, "type": {"type": "null"},
                "changes": {"type": "array", "items": {"type": "object", "properties": {
                    "type": {"type": "string"}, "action": {"type": "string", "enum": ["created", "changed", "deleted"]},
                    "field": nullable(json!({"type": "string"})), "before": {}, "after": {}}}}}},
            "created_at": timestamp, "is_system": {"type": "boolean"}}},
        "PaginatedActivityLog": {"type": "object", "properties": {
            "results": {"type": "array", "items": schema_ref("ActivityLogEntry")},
            "next": nullable(json!({"type": "string", "format": "uri"})),
            "previous": nullable(json!({"type": "string", "format": "uri"})),
            "total_count": {"type": "integer"}}},
        "Cohort": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "description": {"type": "string"},
            "filters": {"type": "object", "description": "{\"properties\": {\"type\": \"AND\"|\"OR\", \"values\": [...]}}"},
            "is_static": {"type": "boolean"}, "deleted": {"type": "boolean"},
            "count": nullable(json!({"type": "integer"})), "is_calculating": {"type": "boolean"},
            "created_at": timestamp, "created_by": nullable(schema_ref("User")), "version": {"type": "integer"}}},
        "CohortWrite": {"type": "object", "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "filters": {"type": "object"}, "is_static": {"type": "boolean"}, "deleted": {"type": "boolean"},
            "version": {"type": "integer"},
            "distinct_ids": {"type": "array", "items": {"type": "string"},
                "description": "Vexil's JSON alternative to the CSV upload: members of a static cohort (added)."},
            "csv": {"type": "string", "description": "CSV text, as an alternative to a multipart upload."}}},
        "PaginatedCohortList": page_of("Cohort"),
        "Person": {"type": "object", "properties": {
            "id": nullable(json!({"type": "string", "format": "uuid"})),
            "uuid": nullable(json!({"type": "string", "format": "uuid"})),
            "name": {"type": "string"}, "distinct_ids": string_list,
            "properties": {"type": "object"}, "created_at": nullable(timestamp),
            "is_identified": {"type": "boolean"}}},
        "PersonList": {"type": "object", "properties": {
            "results": {"type": "array", "items": schema_ref("Person")},
            "next": {"type": "null"}, "previous": {"type": "null"}}},
        "PaginatedPersonList": page_of("Person"),
        "Definitions": {"type": "object", "properties": {
            "flags": {"type": "array", "items": {"type": "object"}},
            "group_type_mapping": {"type": "object", "additionalProperties": {"type": "string"}},
            "cohorts": {"type": "object"}}},
        "PersonalAPIKeyCurrent": {"type": "object", "properties": {
            "scopes": string_list,
            "scoped_teams": {"type": "array", "items": {"type": "integer"}},
            "scoped_organizations": {"type": "array", "items": {"type": "string", "format": "uuid"}}}},
        "PersonalAPIKey": {"type": "object", "properties": {
            "id": {"type": "integer"}, "label": {"type": "string"},
            "value": {"type": "string", "description": "Only in the answer that created the key."},
            "mask_value": {"type": "string"}, "user_id": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "last_used_at": nullable(json!({"type": "string", "format": "date-time"})),
            "scopes": string_list,
            "scoped_teams": {"type": "array", "items": {"type": "integer"}}}},
        "UserMe": {"allOf": [schema_ref("User"), {"type": "object", "properties": {
            "organizations": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}}},
            "team": {"type": "object", "properties": {"id": {"type": "integer"}, "organization": {"type": "string", "format": "uuid"}}},
            "organization": {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}}}}]},
    });
    // A second literal: one `json!` this size reaches the macro recursion limit.
    let early_access = json!({
        "EarlyAccessStage": {"type": "string",
            "enum": ["draft", "concept", "alpha", "beta", "general-availability", "archived"]},
        "EarlyAccessFeature": {"type": "object", "properties": {
            "id": {"type": "string", "format": "uuid"},
            "feature_flag": nullable(schema_ref("FeatureFlag")),
            "name": {"type": "string"},
            "description": {"type": "string"},
            "stage": schema_ref("EarlyAccessStage"),
            "documentation_url": {"type": "string"},
            "payload": {"type": "object"},
            "created_at": {"type": "string", "format": "date-time"}}},
        "EarlyAccessFeatureWrite": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 200},
            "description": {"type": "string"},
            "stage": schema_ref("EarlyAccessStage"),
            "documentation_url": {"type": "string", "format": "uri", "maxLength": 800},
            "payload": {"type": "object"},
            "feature_flag_id": {"type": "integer", "description": "Link an existing flag (create only)."},
            "rollout_to_all": {"type": "boolean", "description": "With `stage: general-availability`: roll the flag out to everyone."}}},
        "PaginatedEarlyAccessFeatureList": page_of("EarlyAccessFeature"),
    });
    if let (Some(all), Value::Object(more)) = (schemas.as_object_mut(), early_access) {
        all.extend(more);
    }
    schemas
}

fn build() -> Value {
    let mut paths = project_paths("projects");
    paths.extend(project_paths("environments"));
    paths.insert(
        "/api/personal_api_keys/@current/".into(),
        json!({"get": op("personal_api_keys_current", "auth",
            "The calling key: its scopes and the one project it reaches.", &[], None,
            json!({"200": ok("The key.", schema_ref("PersonalAPIKeyCurrent"))}))}),
    );
    paths.insert(
        "/api/personal_api_keys/".into(),
        json!({
            "get": op("personal_api_keys_list", "auth",
                "The calling user's personal keys, newest first, without their values (a user's key only).", &[], None,
                json!({"200": ok("The keys.", json!({"type": "array", "items": schema_ref("PersonalAPIKey")})),
                       "403": error("A project's own key: it has no user.")})),
            "post": op("personal_api_keys_create", "auth",
                "Creates a personal key for the calling user; its `value` is in this answer only.", &[],
                Some(json_body(json!({"type": "object", "required": ["label"], "properties": {
                    "label": {"type": "string", "maxLength": 40},
                    "scopes": {"type": "array", "items": {"type": "string", "enum": ["*"]}}}}))),
                json!({"201": ok("The key, with its value.", schema_ref("PersonalAPIKey")),
                       "400": error("A missing or too long label."),
                       "403": error("A project's own key: it has no user.")})),
        }),
    );
    paths.insert(
        "/api/personal_api_keys/{key_id}/".into(),
        json!({
            "parameters": [{"name": "key_id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "get": op("personal_api_keys_retrieve", "auth", "One of the calling user's keys.", &[], None,
                json!({"200": ok("The key.", schema_ref("PersonalAPIKey")), "404": error("Not one of the caller's keys.")})),
            "delete": op("personal_api_keys_destroy", "auth",
                "Revokes one of the calling user's keys: refused from the next request on.", &[], None,
                json!({"204": {"description": "Revoked."}, "404": error("Not one of the caller's keys.")})),
        }),
    );
    paths.insert(
        "/api/users/@me/".into(),
        json!({"get": op("users_me", "auth", "The key holder, with the key's project as `team`.", &[], None,
            json!({"200": ok("The user.", schema_ref("UserMe"))}))}),
    );
    paths.insert(
        "/api/schema/".into(),
        json!({"get": {"operationId": "schema_retrieve", "tags": ["schema"], "security": [],
            "summary": "This document: YAML by default, JSON with ?format=json or Accept: application/json.",
            "parameters": [{"name": "format", "in": "query", "required": false,
                "schema": {"type": "string", "enum": ["json", "yaml"]}}],
            "responses": {"200": {"description": "The OpenAPI document.", "content": {
                "application/vnd.oai.openapi": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}}}}}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vexil management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "PostHog-compatible management API for feature flags, cohorts and persons. Every project route is served under both /api/projects/{project_id}/ and /api/environments/{project_id}/, with or without the trailing slash. Errors are JSON {type, code, detail, attr}; a malformed JSON body is a 400 parse_error. Flags are never hard-deleted: DELETE is 405, soft-delete with PATCH {\"deleted\": true}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"PersonalAPIKeyAuth": []}],
        "tags": [
            {"name": "feature_flags"}, {"name": "cohorts"}, {"name": "persons"},
            {"name": "auth"}, {"name": "keys"}, {"name": "schema"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "PersonalAPIKeyAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "phx_…",
                    "description": "A personal API key (phx_…). It reaches its own project only; project tokens (phc_…) are refused with 401. The key may also be sent as personal_api_key in a JSON body; in the query string (personal_api_key=…) it is refused with 401."},
            },
            "parameters": parameters(),
            "schemas": schemas(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in the document resolves.
    #[test]
    fn references_resolve() {
        fn walk(v: &Value, doc: &Value, bad: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let pointer = r.trim_start_matches('#');
                        if doc.pointer(pointer).is_none() {
                            bad.push(r.clone());
                        }
                    }
                    m.values().for_each(|x| walk(x, doc, bad));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, doc, bad)),
                _ => {}
            }
        }
        let doc = document();
        let mut bad = Vec::new();
        walk(doc, doc, &mut bad);
        assert!(bad.is_empty(), "unresolved: {bad:?}");
        assert!(doc["paths"]["/api/projects/{project_id}/feature_flags/"]["post"].is_object());
    }
}
