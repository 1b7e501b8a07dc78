//! The cost of a `/flags` response body for the realistic 50-flag project (case e), by shape:
//! flags v2 through its direct writer (`FlagsResponse::write_json`), the v4 typed records
//! (posthog-python 7.9x asks `/flags?v=4`) and the legacy v1 maps, which go through serde.
//!
//! Run: `cargo bench -p vexil-bench --bench response -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::Criterion;
use vexil_bench::{case_e_project_50, VexilCase};
use vexil_engine::evaluate;
use vexil_wire::{Envelope, FlagsResponse, ResponseShape};

fn response(c: &mut Criterion) {
    let case = VexilCase::new(&case_e_project_50());
    let ctx = case.context();
    let evaluation = evaluate(&case.project, &ctx);
    let envelope = Envelope {
        request_id: Some("550e8400-e29b-41d4-a716-446655440000"),
        evaluated_at: Some(1_767_236_645_000),
        ..Envelope::default()
    };
    let mut group = c.benchmark_group("response_50_flags");
    for (name, shape) in [
        ("flags_v2", ResponseShape::FlagsV2),
        ("flags_v4_typed", ResponseShape::FlagsV3),
        ("flags_v1", ResponseShape::FlagsV1),
    ] {
        let body = FlagsResponse::new(shape, &evaluation, envelope);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(16 * 1024);
                black_box(&body).write_json(&mut out).map(|()| out)
            })
        });
    }
    group.finish();
}

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, spelled out so that the generated
    // public function does not trip the workspace's `missing_docs` lint.
    let mut c = Criterion::default().configure_from_args();
    response(&mut c);
    c.final_summary();
}
