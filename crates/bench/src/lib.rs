//! Benchmark-only crate: shared fixtures for `benches/engine.rs` and the measurement examples.
//!
//! Every case is written once as PostHog's local-evaluation JSON (the `/flags/definitions`
//! payload) and loaded into both evaluators from that same JSON:
//!
//! * Vexil: [`VexilCase`] holds a [`CompiledProject`] (compiled once, outside any timing loop)
//!   and the request's property maps; [`VexilCase::context`] borrows them into a [`Context`].
//! * posthog-rs: [`PosthogCase`] holds the deserialized `posthog_rs::FeatureFlag`s and the
//!   `HashMap`s that `posthog_rs::match_feature_flag` takes; [`PosthogCase::evaluate_all`] calls
//!   that pure, offline, per-flag function once per flag.
//!
//! [`check_agreement`] runs both on a case and fails loudly if they disagree on any flag that
//! posthog-rs could decide locally, so that the benchmark never compares different work.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};
use vexil_engine::{evaluate, CompiledProject, Context, Definitions, FlagValue};

/// The distinct id used by every case.
pub const DISTINCT_ID: &str = "user-5f1c2a9e-0d4b-4c1e-9a7f-3b2d8e6f1a04";

/// The evaluation instant handed to Vexil (only relative-date filters read it; none is used).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// One benchmark case as JSON: the definitions payload plus the request.
#[derive(Debug, Clone)]
pub struct Case {
    /// Criterion group name (`a_rollout_50`, ...).
    pub name: &'static str,
    /// `{"flags": [...], "group_type_mapping": {...}}`.
    pub definitions: Value,
    /// Person properties sent with the request.
    pub person: Value,
    /// `{"<group type>": "<group key>"}`.
    pub groups: Value,
    /// `{"<group type>": {props}}`.
    pub group_properties: Value,
}

fn flag(key: &str, filters: Value) -> Value {
    json!({"id": 1, "key": key, "active": true, "filters": filters})
}

fn defs(flags: Vec<Value>) -> Value {
    let flags: Vec<Value> = flags
        .into_iter()
        .enumerate()
        .map(|(i, mut f)| {
            f["id"] = json!(i + 1);
            f
        })
        .collect();
    json!({"flags": flags, "group_type_mapping": {"0": "company"}})
}

/// The ~10 person properties of one realistic request.
pub fn realistic_person() -> Value {
    json!({
        "email": "ada.lovelace@acme.com",
        "plan": "pro",
        "age": 36,
        "country": "GB",
        "$browser": "Chrome",
        "app_version": "2.4.1",
        "signup_date": "2024-03-15T10:00:00Z",
        "is_beta_tester": true,
        "company_size": 250,
        "locale": "en-GB"
    })
}

/// (a) One flag, 50% rollout, no properties.
pub fn case_a_rollout_50() -> Case {
    Case {
        name: "a_rollout_50",
        definitions: defs(vec![flag(
            "rollout-50",
            json!({"groups": [{"properties": [], "rollout_percentage": 50}]}),
        )]),
        person: json!({}),
        groups: json!({}),
        group_properties: json!({}),
    }
}

/// (b) A 3-variant multivariate flag (34/33/33), 100% rollout, no properties.
pub fn case_b_multivariate() -> Case {
    Case {
        name: "b_multivariate_3",
        definitions: defs(vec![flag(
            "mv-3",
            json!({
                "groups": [{"properties": [], "rollout_percentage": 100}],
                "multivariate": {"variants": [
                    {"key": "control", "rollout_percentage": 34},
                    {"key": "test-a", "rollout_percentage": 33},
                    {"key": "test-b", "rollout_percentage": 33}
                ]}
            }),
        )]),
        person: json!({}),
        groups: json!({}),
        group_properties: json!({}),
    }
}

/// (c) One condition with three property filters (icontains, exact-with-list, gt), all matching.
pub fn case_c_three_filters() -> Case {
    Case {
        name: "c_three_filters",
        definitions: defs(vec![flag(
            "three-filters",
            json!({"groups": [{
                "properties": [
                    {"key": "email", "operator": "icontains", "value": "@acme.com", "type": "person"},
                    {"key": "plan", "operator": "exact", "value": ["pro", "enterprise"], "type": "person"},
                    {"key": "age", "operator": "gt", "value": 21, "type": "person"}
                ],
                "rollout_percentage": 100
            }]}),
        )]),
        person: json!({"email": "ada.lovelace@acme.com", "plan": "pro", "age": 36}),
        groups: json!({}),
        group_properties: json!({}),
    }
}

/// (d) One regex filter on email, matching.
pub fn case_d_regex() -> Case {
    Case {
        name: "d_regex",
        definitions: defs(vec![flag(
            "regex-email",
            json!({"groups": [{
                "properties": [
                    {"key": "email", "operator": "regex", "value": r"^.*@(acme|example)\.com$", "type": "person"}
                ],
                "rollout_percentage": 100
            }]}),
        )]),
        person: json!({"email": "ada.lovelace@acme.com"}),
        groups: json!({}),
        group_properties: json!({}),
    }
}

fn prop(key: &str, operator: &str, value: Value) -> Value {
    json!({"key": key, "operator": operator, "value": value, "type": "person"})
}

fn cond(properties: Vec<Value>, rollout: u32) -> Value {
    json!({"properties": properties, "rollout_percentage": rollout})
}

fn variants(v: &[(&str, u32)]) -> Value {
    let list: Vec<Value> = v
        .iter()
        .map(|(k, p)| json!({"key": k, "rollout_percentage": p}))
        .collect();
    json!({ "variants": list })
}

/// The 50 flags of the realistic project; `salt` varies keys and literal values so that a
/// generated project of many copies holds no two identical flags (`salt = 0` is the base case).
pub fn realistic_flags(salt: usize) -> Vec<Value> {
    let s = |k: &str| {
        if salt == 0 {
            k.to_owned()
        } else {
            format!("{k}-{salt}")
        }
    };
    let n = salt as u32 % 7; // nudges numeric thresholds
    let mut flags = Vec::with_capacity(50);

    // 12 plain percentage rollouts.
    for (i, pct) in [0, 5, 10, 20, 25, 30, 50, 50, 75, 90, 100, 100]
        .into_iter()
        .enumerate()
    {
        flags.push(flag(
            &s(&format!("rollout-{i}")),
            json!({"groups": [cond(vec![], pct)]}),
        ));
    }

    // 8 single-filter flags.
    flags.push(flag(
        &s("country-gb"),
        json!({"groups": [cond(vec![prop("country", "exact", json!("GB"))], 100)]}),
    ));
    flags.push(flag(
        &s("country-na"),
        json!({"groups": [cond(vec![prop("country", "exact", json!(["US", "CA"]))], 100)]}),
    ));
    flags.push(flag(
        &s("chrome-half"),
        json!({"groups": [cond(vec![prop("$browser", "icontains", json!("chrome"))], 50)]}),
    ));
    flags.push(flag(
        &s("paid-only"),
        json!({"groups": [cond(vec![prop("plan", "is_not", json!("free"))], 100)]}),
    ));
    flags.push(flag(
        &s("minors"),
        json!({"groups": [cond(vec![prop("age", "lt", json!(18 + n))], 100)]}),
    ));
    flags.push(flag(
        &s("acme-staff"),
        json!({"groups": [cond(vec![prop("email", "ends_with", json!("@acme.com"))], 100)]}),
    ));
    flags.push(flag(
        &s("english"),
        json!({"groups": [cond(vec![prop("locale", "starts_with", json!("en"))], 80)]}),
    ));
    flags.push(flag(
        &s("beta-testers"),
        json!({"groups": [cond(vec![prop("is_beta_tester", "exact", json!(["true"]))], 100)]}),
    ));

    // 6 multi-filter flags.
    flags.push(flag(
        &s("acme-pro-adults"),
        json!({"groups": [cond(vec![
            prop("email", "icontains", json!("@acme.com")),
            prop("plan", "exact", json!(["pro", "enterprise"])),
            prop("age", "gt", json!(21 + n)),
        ], 100)]}),
    ));
    flags.push(flag(
        &s("acme-enterprise"),
        json!({"groups": [cond(vec![
            prop("email", "icontains", json!("@acme.com")),
            prop("plan", "exact", json!(["enterprise"])),
        ], 100)]}),
    ));
    flags.push(flag(
        &s("eu-mid-market"),
        json!({"groups": [cond(vec![
            prop("company_size", "gte", json!(100 + n)),
            prop("country", "exact", json!(["GB", "DE", "FR"])),
        ], 100)]}),
    ));
    flags.push(flag(
        &s("new-app-chrome"),
        json!({"groups": [cond(vec![
            prop("app_version", "semver_gte", json!(format!("2.{}.0", 3 + n))),
            prop("$browser", "exact", json!("Chrome")),
        ], 100)]}),
    ));
    flags.push(flag(
        &s("early-signups"),
        json!({"groups": [cond(vec![prop("signup_date", "is_date_before", json!("2025-01-01"))], 30)]}),
    ));
    flags.push(flag(
        &s("has-email"),
        json!({"groups": [cond(vec![prop("email", "is_set", json!("is_set"))], 40)]}),
    ));

    // 3 multi-condition flags (first condition misses, a later one decides).
    flags.push(flag(
        &s("multi-cond-1"),
        json!({"groups": [
            cond(vec![prop("country", "exact", json!(["US"]))], 100),
            cond(vec![prop("plan", "exact", json!(["pro"]))], 100)
        ]}),
    ));
    flags.push(flag(
        &s("multi-cond-2"),
        json!({"groups": [
            cond(vec![prop("email", "icontains", json!("@example.org"))], 100),
            cond(vec![prop("age", "gte", json!(30))], 25),
            cond(vec![], 10)
        ]}),
    ));
    flags.push(flag(
        &s("multi-cond-3"),
        json!({"groups": [
            cond(vec![prop("$browser", "exact", json!(["Firefox", "Safari"]))], 100),
            cond(vec![prop("locale", "exact", json!(["de-DE", "fr-FR"]))], 100)
        ]}),
    ));

    // 8 multivariate flags.
    flags.push(flag(
        &s("mv-ab"),
        json!({"groups": [cond(vec![], 100)], "multivariate": variants(&[("control", 50), ("test", 50)])}),
    ));
    flags.push(flag(
        &s("mv-abc"),
        json!({"groups": [cond(vec![], 100)],
               "multivariate": variants(&[("control", 34), ("test-a", 33), ("test-b", 33)])}),
    ));
    flags.push(flag(
        &s("mv-abcd-half"),
        json!({"groups": [cond(vec![], 50)],
               "multivariate": variants(&[("a", 25), ("b", 25), ("c", 25), ("d", 25)])}),
    ));
    flags.push(flag(
        &s("mv-pro-pricing"),
        json!({"groups": [cond(vec![prop("plan", "exact", json!("pro"))], 100)],
               "multivariate": variants(&[("control", 50), ("discount", 50)]),
               "payloads": {"control": "{\"price\": 10}", "discount": "{\"price\": 8}"}}),
    ));
    flags.push(flag(
        &s("mv-override"),
        json!({"groups": [
                   {"properties": [prop("email", "icontains", json!("@acme.com"))], "rollout_percentage": 100, "variant": "test"},
                   cond(vec![], 100)
               ],
               "multivariate": variants(&[("control", 50), ("test", 50)])}),
    ));
    flags.push(flag(
        &s("mv-us-only"),
        json!({"groups": [cond(vec![prop("country", "exact", json!(["US"]))], 100)],
               "multivariate": variants(&[("control", 50), ("test", 50)])}),
    ));
    flags.push(flag(
        &s("mv-onboarding"),
        json!({"groups": [cond(vec![prop("signup_date", "is_date_before", json!("2025-06-01"))], 70)],
               "multivariate": variants(&[("short", 30), ("long", 30), ("video", 40)])}),
    ));
    flags.push(flag(
        &s("mv-checkout"),
        json!({"groups": [cond(vec![prop("company_size", "lte", json!(1000))], 100)],
               "multivariate": variants(&[("one-page", 50), ("multi-step", 50)])}),
    ));

    // 3 regex flags.
    flags.push(flag(
        &s("regex-email"),
        json!({"groups": [cond(vec![prop("email", "regex", json!(format!(r"^.*@(acme|example{n})\.com$")))], 100)]}),
    ));
    flags.push(flag(
        &s("regex-browser"),
        json!({"groups": [cond(vec![prop("$browser", "regex", json!(format!("^(Firefox|Safari{n})")))], 100)]}),
    ));
    flags.push(flag(
        &s("regex-locale"),
        json!({"groups": [cond(vec![prop("locale", "regex", json!(format!("^en-(GB|US|X{n})$")))], 100)]}),
    ));

    // 1 group flag (companies with more than 100 employees).
    flags.push(flag(
        &s("group-large-companies"),
        json!({"aggregation_group_type_index": 0, "groups": [{
            "properties": [{"key": "employees", "operator": "gt", "value": 100 + n, "type": "group", "group_type_index": 0}],
            "rollout_percentage": 100
        }]}),
    ));

    // 7 flags that do not match this request, with negative operators and an inactive flag.
    flags.push(flag(
        &s("japan"),
        json!({"groups": [cond(vec![prop("country", "exact", json!("JP"))], 100)]}),
    ));
    flags.push(flag(
        &s("free-plan"),
        json!({"groups": [cond(vec![prop("plan", "exact", json!(["free", "trial"]))], 100)]}),
    ));
    flags.push(flag(
        &s("seniors"),
        json!({"groups": [cond(vec![prop("age", "gte", json!(65))], 100)]}),
    ));
    flags.push(flag(
        &s("old-app"),
        json!({"groups": [cond(vec![prop("app_version", "semver_lt", json!("2.0.0"))], 100)]}),
    ));
    flags.push(flag(
        &s("not-acme"),
        json!({"groups": [cond(vec![prop("email", "not_icontains", json!("@acme.com"))], 100)]}),
    ));
    flags.push(flag(
        &s("not-regex-gmail"),
        json!({"groups": [cond(vec![prop("email", "not_regex", json!(format!(r"@gmail{n}\.com$")))], 100)]}),
    ));
    let mut inactive = flag(&s("inactive"), json!({"groups": [cond(vec![], 100)]}));
    inactive["active"] = json!(false);
    flags.push(inactive);

    // 2 more rollouts with a property.
    flags.push(flag(
        &s("gb-rollout-10"),
        json!({"groups": [cond(vec![prop("country", "exact", json!("GB"))], 10)]}),
    ));
    flags.push(flag(
        &s("pro-rollout-60"),
        json!({"groups": [cond(vec![prop("plan", "exact", json!("pro"))], 60)]}),
    ));

    debug_assert_eq!(flags.len(), 50);
    flags
}

/// (e) A realistic 50-flag project for one request with 10 person properties and one group.
pub fn case_e_project_50() -> Case {
    Case {
        name: "e_project_50",
        definitions: defs(realistic_flags(0)),
        person: realistic_person(),
        groups: json!({"company": "acme-inc"}),
        group_properties: json!({"company": {"employees": 250, "industry": "saas"}}),
    }
}

/// All five evaluation cases, in report order.
pub fn cases() -> Vec<Case> {
    vec![
        case_a_rollout_50(),
        case_b_multivariate(),
        case_c_three_filters(),
        case_d_regex(),
        case_e_project_50(),
    ]
}

/// A generated project of `n` varied flags (copies of the 50 realistic templates with distinct
/// keys and literal values), as Vexil definitions.
pub fn generated_definitions(n: usize) -> Definitions {
    let mut flags = Vec::with_capacity(n);
    let mut salt = 1;
    while flags.len() < n {
        flags.extend(realistic_flags(salt).into_iter().take(n - flags.len()));
        salt += 1;
    }
    parse_definitions(&defs(flags))
}

fn parse_definitions(v: &Value) -> Definitions {
    match serde_json::from_value(v.clone()) {
        Ok(d) => d,
        Err(e) => panic!("fixture is not valid Vexil definitions JSON: {e}"),
    }
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A case loaded into Vexil: compiled once; the request maps are owned here.
pub struct VexilCase {
    /// The compiled project.
    pub project: CompiledProject,
    /// Person properties.
    pub person: Map<String, Value>,
    /// Group keys.
    pub groups: Map<String, Value>,
    /// Group properties.
    pub group_properties: Map<String, Value>,
}

impl VexilCase {
    /// Parses and compiles the case's definitions (the one-time cost, outside timing loops).
    pub fn new(case: &Case) -> Self {
        VexilCase {
            project: CompiledProject::compile(&parse_definitions(&case.definitions)),
            person: object(&case.person),
            groups: object(&case.groups),
            group_properties: object(&case.group_properties),
        }
    }

    /// The request context (borrowing the maps; building it allocates nothing).
    pub fn context(&self) -> Context<'_> {
        let mut ctx = Context::new(DISTINCT_ID, now());
        if !self.person.is_empty() {
            ctx.person_properties = Some(&self.person);
        }
        if !self.groups.is_empty() {
            ctx.groups = Some(&self.groups);
            ctx.group_properties = Some(&self.group_properties);
        }
        ctx
    }
}

/// A case loaded into posthog-rs: flag definitions deserialized once into its own types.
pub struct PosthogCase {
    /// Flag definitions, in definition order.
    pub flags: Vec<posthog_rs::FeatureFlag>,
    /// Person properties.
    pub person: HashMap<String, Value>,
    /// Group keys.
    pub groups: HashMap<String, String>,
    /// Group properties.
    pub group_properties: HashMap<String, HashMap<String, Value>>,
    /// `{"<group type index>": "<group type name>"}`.
    pub group_type_mapping: HashMap<String, String>,
}

impl PosthogCase {
    /// Deserializes the case's definitions into posthog-rs types.
    pub fn new(case: &Case) -> Self {
        let flags = match serde_json::from_value(case.definitions["flags"].clone()) {
            Ok(f) => f,
            Err(e) => panic!("fixture is not valid posthog-rs FeatureFlag JSON: {e}"),
        };
        let group_type_mapping =
            serde_json::from_value(case.definitions["group_type_mapping"].clone())
                .unwrap_or_default();
        PosthogCase {
            flags,
            person: object(&case.person).into_iter().collect(),
            groups: object(&case.groups)
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
                .collect(),
            group_properties: object(&case.group_properties)
                .into_iter()
                .map(|(k, v)| (k, object(&v).into_iter().collect()))
                .collect(),
            group_type_mapping,
        }
    }

    /// `posthog_rs::match_feature_flag` for one flag: its pure, offline, per-flag entry point.
    #[inline]
    pub fn evaluate_one(
        &self,
        flag: &posthog_rs::FeatureFlag,
    ) -> Result<posthog_rs::FlagValue, posthog_rs::InconclusiveMatchError> {
        posthog_rs::match_feature_flag(
            flag,
            DISTINCT_ID,
            &self.person,
            &self.groups,
            &self.group_properties,
            &self.group_type_mapping,
        )
    }

    /// Every flag, one `match_feature_flag` call each, results collected in definition order.
    pub fn evaluate_all(
        &self,
    ) -> Vec<Result<posthog_rs::FlagValue, posthog_rs::InconclusiveMatchError>> {
        self.flags.iter().map(|f| self.evaluate_one(f)).collect()
    }
}

/// Vexil's answer for every flag of a case, as `(key, Some(value))` with inactive flags `false`.
pub fn vexil_values(v: &VexilCase) -> Vec<(String, posthog_rs::FlagValue)> {
    let ctx = v.context();
    let eval = evaluate(&v.project, &ctx);
    v.project
        .flags()
        .iter()
        .map(|f| {
            let value = match eval.get(f.key()).map(|r| r.value) {
                Some(FlagValue::True) => posthog_rs::FlagValue::Boolean(true),
                Some(FlagValue::Variant(s)) => posthog_rs::FlagValue::String(s.to_owned()),
                Some(FlagValue::False) | None => posthog_rs::FlagValue::Boolean(false),
            };
            (f.key().to_owned(), value)
        })
        .collect()
}

/// Runs both evaluators on `case` and returns the disagreements (empty = same answers).
///
/// Flags that posthog-rs reports as inconclusive are listed too, so that a case cannot quietly
/// benchmark posthog-rs bailing out early.
pub fn check_agreement(case: &Case) -> Vec<String> {
    let v = VexilCase::new(case);
    let p = PosthogCase::new(case);
    let ours = vexil_values(&v);
    let theirs = p.evaluate_all();
    let mut problems = Vec::new();
    if ours.len() != theirs.len() {
        problems.push(format!(
            "{}: vexil has {} flags, posthog-rs {}",
            case.name,
            ours.len(),
            theirs.len()
        ));
    }
    for ((key, mine), other) in ours.iter().zip(&theirs) {
        match other {
            Ok(value) if value == mine => {}
            Ok(value) => problems.push(format!(
                "{}/{key}: vexil {mine:?}, posthog-rs {value:?}",
                case.name
            )),
            Err(e) => problems.push(format!(
                "{}/{key}: posthog-rs inconclusive ({e})",
                case.name
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_evaluators_agree_on_every_case() {
        for case in cases() {
            let problems = check_agreement(&case);
            assert!(problems.is_empty(), "{problems:#?}");
        }
    }

    #[test]
    fn realistic_project_has_50_flags_and_compiles_cleanly() {
        let v = VexilCase::new(&case_e_project_50());
        assert_eq!(v.project.flags().len(), 50);
        for f in v.project.flags() {
            assert!(f.defect().is_none(), "{}: {:?}", f.key(), f.defect());
        }
    }

    #[test]
    fn generated_project_is_varied_and_clean() {
        let defs = generated_definitions(1_000);
        let project = CompiledProject::compile(&defs);
        assert_eq!(project.flags().len(), 1_000);
        assert!(project.flags().iter().all(|f| f.defect().is_none()));
    }
}
