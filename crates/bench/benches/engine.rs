//! Vexil's `evaluate` vs posthog-rs's local evaluator, side by side in one binary.
//!
//! For every case `<case>/vexil` times only `evaluate` on a project compiled once before the
//! timing loop (compile-once is the engine's design); `<case>/posthog_rs` times
//! `posthog_rs::match_feature_flag` (its pure, offline per-flag entry point, and its cheapest
//! path: no `RwLock`ed cache, no cohort map rebuild) once per flag of the case, on definitions
//! deserialized once before the loop. Both sides receive the same definitions JSON and the same
//! request, and must agree on every flag before anything is timed.
//!
//! Run: `cargo bench -p vexil-bench --bench engine -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::Criterion;
use vexil_bench::{cases, check_agreement, PosthogCase, VexilCase};
use vexil_engine::evaluate;

fn engine(c: &mut Criterion) {
    for case in cases() {
        let problems = check_agreement(&case);
        assert!(
            problems.is_empty(),
            "vexil and posthog-rs disagree: {problems:#?}"
        );

        let vexil = VexilCase::new(&case);
        let posthog = PosthogCase::new(&case);
        let mut group = c.benchmark_group(case.name);

        let ctx = vexil.context();
        group.bench_function("vexil", |b| {
            b.iter(|| evaluate(black_box(&vexil.project), black_box(&ctx)))
        });

        group.bench_function("posthog_rs", |b| {
            b.iter(|| {
                for flag in black_box(&posthog.flags) {
                    // Results are black-boxed, not collected: no allocation is charged to
                    // posthog-rs beyond its own.
                    let _ = black_box(posthog.evaluate_one(flag));
                }
            })
        });
        group.finish();
    }
}

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, spelled out so that the generated
    // public function does not trip the workspace's `missing_docs` lint.
    let mut c = Criterion::default().configure_from_args();
    engine(&mut c);
    c.final_summary();
}
