//! Query parameters, the defaulting rule, the response-shape table (spec §1.2, §1.6) and the
//! per-request flag filter (§1.5 step 8).

use serde_json::json;
use vexil_engine::{evaluate, CompiledFlag, Context};
use vexil_wire::request::EffectiveQuery;
use vexil_wire::{
    Compression, EvaluationRuntime, FlagFilter, FlagsQuery, FlagsRequest, ResponseShape,
    RuntimeHints,
};

use crate::support::{now, project};

#[test]
fn parses_parameters_and_aliases() {
    let q = FlagsQuery::parse("v=3&compression=base64&ver=1.211.0&_=1738006794028&ip=1");
    assert_eq!(q.version, Some(3));
    assert_eq!(q.compression(), Some(Compression::Base64));
    assert_eq!(q.lib_version.as_deref(), Some("1.211.0"));
    assert_eq!(q.sent_at, Some(1_738_006_794_028));
    assert_eq!(q.config, None);

    let q = FlagsQuery::parse("version=4&lib_version=x&sent_at=5&config=true&compression=gzip-js");
    assert_eq!(
        (q.version, q.sent_at, q.config),
        (Some(4), Some(5), Some(true))
    );
    assert_eq!(q.compression(), Some(Compression::Gzip));

    let q = FlagsQuery::parse(
        "only_evaluate_survey_feature_flags=1&detailed_analysis=false&only_use_override_person_properties=TRUE",
    );
    assert_eq!(q.only_evaluate_survey_feature_flags, Some(true));
    assert_eq!(q.detailed_analysis, Some(false));
    assert_eq!(q.only_use_override_person_properties, Some(true));
}

#[test]
fn empty_values_are_absent_and_bad_versions_read_as_one() {
    let q = FlagsQuery::parse("v=&config=&compression=");
    assert_eq!(q, FlagsQuery::default());
    assert_eq!(FlagsQuery::parse("v=abc").version, Some(1));
    assert_eq!(FlagsQuery::parse("v=2.5").version, Some(1));
    assert_eq!(
        FlagsQuery::parse("compression=lz64").compression(),
        Some(Compression::Unsupported)
    );
    assert_eq!(FlagsQuery::parse("_=soon").sent_at, None);
    // First value wins; percent and `+` decoding.
    assert_eq!(FlagsQuery::parse("v=2&version=4&v=3").version, Some(2));
    assert_eq!(
        FlagsQuery::parse("ver=1%2E2+beta").lib_version.as_deref(),
        Some("1.2 beta")
    );
    assert_eq!(FlagsQuery::parse("").version, None);
    assert_eq!(FlagsQuery::parse("&&=&v").version, None);
    assert_eq!(
        FlagsQuery::from_pairs([("v", "2"), ("config", "0")]).config,
        Some(false)
    );
}

#[test]
fn defaulting_rule() {
    let eff = |q: &str, decide| FlagsQuery::parse(q).effective(decide);
    let e = |version, config| EffectiveQuery { version, config };
    assert_eq!(eff("", false), e(Some(2), true));
    assert_eq!(eff("v=1", false), e(Some(1), false));
    assert_eq!(eff("config=false", false), e(None, false));
    assert_eq!(eff("config=true", false), e(None, true));
    // /decide without config gets config=true first, so v stays absent.
    assert_eq!(eff("", true), e(None, true));
    assert_eq!(eff("v=3", true), e(Some(3), true));
    assert_eq!(eff("v=3&config=false", true), e(Some(3), false));
}

#[test]
fn response_shape_table() {
    use ResponseShape::*;
    let cases = [
        (false, "", FlagsV2),
        (false, "v=1", FlagsV1),
        (false, "config=true", FlagsV1),
        (false, "v=abc", FlagsV1),
        (false, "v=2", FlagsV2),
        (false, "v=3", FlagsV2),
        (false, "v=4", FlagsV3),
        (false, "v=9", FlagsV3),
        (false, "v=0", FlagsV1),
        (true, "", DecideV1),
        (true, "v=1", DecideV1),
        (true, "v=2", DecideV2),
        (true, "v=3", FlagsV1),
        (true, "v=4", FlagsV2),
        (true, "v=9", FlagsV2),
        (true, "v=0", DecideV1),
        (true, "v=-1", DecideV1),
        (true, "v=abc", DecideV1),
    ];
    for (decide, q, shape) in cases {
        let got = ResponseShape::select(decide, &FlagsQuery::parse(q));
        assert_eq!(got, shape, "decide={decide} {q:?}");
    }
    // GET applies the table to the raw `v`.
    assert_eq!(ResponseShape::for_version(false, None), FlagsV1);
    assert_eq!(FlagsV2.as_str(), "flags_v2");
    assert!(FlagsV1.has_errors_field() && !DecideV2.has_errors_field());
}

#[test]
fn runtime_detection() {
    let detect = |ua: Option<&str>, browser: bool| {
        EvaluationRuntime::detect(&RuntimeHints {
            user_agent: ua,
            has_browser_headers: browser,
        })
    };
    let client = Some(EvaluationRuntime::Client);
    let server = Some(EvaluationRuntime::Server);
    assert_eq!(detect(Some("Mozilla/5.0 (X11) Chrome/120"), false), client);
    assert_eq!(detect(Some("posthog-python/7.9.1"), true), server);
    assert_eq!(detect(Some("posthog-node/5.1"), false), server);
    assert_eq!(detect(Some("python-requests/2.31"), false), server);
    assert_eq!(detect(Some("curl/8.0"), false), server);
    assert_eq!(detect(Some("posthog-ios/3.0"), false), client);
    assert_eq!(detect(Some("something/1.0"), true), client);
    assert_eq!(detect(Some("something/1.0"), false), None);
    assert_eq!(detect(None, false), None);
}

#[test]
fn flag_filter_runtime_tags_and_surveys() {
    let project = project(json!({"flags": [
        {"id": 1, "key": "any", "active": true},
        {"id": 2, "key": "srv", "active": true, "evaluation_runtime": "server"},
        {"id": 3, "key": "cli", "active": true, "evaluation_runtime": "client"},
        {"id": 4, "key": "all", "active": true, "evaluation_runtime": "all"},
        {"id": 5, "key": "weird", "active": true, "evaluation_runtime": "toaster"},
        {"id": 6, "key": "tagged", "active": true, "evaluation_tags": ["web", "docs"]},
        {"id": 7, "key": "survey-targeting-x", "active": true}
    ]}));
    let kept = |filter: &FlagFilter<'_>| -> Vec<&str> {
        project
            .flags()
            .iter()
            .filter(|f| filter.keeps(f))
            .map(|f| f.key())
            .collect()
    };
    let all = FlagFilter {
        runtime: Some(EvaluationRuntime::All),
        ..FlagFilter::default()
    };
    assert_eq!(kept(&all).len(), 7);
    let server = FlagFilter {
        runtime: Some(EvaluationRuntime::Server),
        ..FlagFilter::default()
    };
    assert_eq!(
        kept(&server),
        ["any", "srv", "all", "weird", "tagged", "survey-targeting-x"]
    );
    // The same filter drives the engine's `include` predicate.
    let keep = |f: &CompiledFlag| server.keeps(f);
    let mut ctx = Context::new("u", now());
    ctx.include = Some(&keep);
    let evaluation = evaluate(&project, &ctx);
    assert!(evaluation.get("srv").is_some() && evaluation.get("cli").is_none());

    let unknown = FlagFilter::default();
    assert_eq!(
        kept(&unknown),
        ["any", "all", "weird", "tagged", "survey-targeting-x"]
    );

    let contexts = vec!["docs".to_owned()];
    let tagged = FlagFilter {
        runtime: Some(EvaluationRuntime::All),
        evaluation_contexts: Some(&contexts),
        ..FlagFilter::default()
    };
    assert_eq!(kept(&tagged).len(), 7);
    let other = vec!["mobile".to_owned()];
    let untagged = FlagFilter {
        evaluation_contexts: Some(&other),
        ..all
    };
    assert!(!kept(&untagged).contains(&"tagged"));

    let surveys = FlagFilter {
        survey_only: true,
        ..all
    };
    assert_eq!(kept(&surveys), ["survey-targeting-x"]);

    // Built from a request: explicit runtime beats detection.
    let request = FlagsRequest::from_json(json!({"evaluation_runtime": "client"})).unwrap();
    let query = FlagsQuery::parse("only_evaluate_survey_feature_flags=true");
    let hints = RuntimeHints {
        user_agent: Some("posthog-node/5"),
        has_browser_headers: false,
    };
    let filter = FlagFilter::for_request(&request, &query, &hints);
    assert_eq!(filter.runtime, Some(EvaluationRuntime::Client));
    assert!(filter.survey_only);
}
