//! Where a one-flag evaluation's time goes (Vexil only): the fixed per-call cost of `evaluate`
//! (result vectors; measured on a project whose only flag is inactive), a 100% rollout (no hash),
//! a 50% rollout (one SHA-1), and the bucketing hash alone.
//!
//! Run: `cargo bench -p vexil-bench --bench breakdown -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::Criterion;
use serde_json::json;
use vexil_bench::{Case, VexilCase, DISTINCT_ID};
use vexil_engine::{evaluate, hash::hash01};

fn one_flag(active: bool, rollout: u32) -> VexilCase {
    VexilCase::new(&Case {
        name: "breakdown",
        definitions: json!({"flags": [{
            "id": 1, "key": "rollout-50", "active": active,
            "filters": {"groups": [{"properties": [], "rollout_percentage": rollout}]}
        }]}),
        person: json!({}),
        groups: json!({}),
        group_properties: json!({}),
    })
}

fn breakdown(c: &mut Criterion) {
    let mut group = c.benchmark_group("breakdown");
    for (name, case) in [
        ("evaluate_inactive_flag", one_flag(false, 50)),
        ("evaluate_rollout_100", one_flag(true, 100)),
        ("evaluate_rollout_50", one_flag(true, 50)),
    ] {
        let ctx = case.context();
        group.bench_function(name, |b| {
            b.iter(|| evaluate(black_box(&case.project), black_box(&ctx)))
        });
    }
    group.bench_function("hash01", |b| {
        b.iter(|| {
            hash01(
                black_box("rollout-50."),
                black_box(DISTINCT_ID),
                black_box(""),
            )
        })
    });
    group.finish();
}

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, spelled out so that the generated
    // public function does not trip the workspace's `missing_docs` lint.
    let mut c = Criterion::default().configure_from_args();
    breakdown(&mut c);
    c.final_summary();
}
