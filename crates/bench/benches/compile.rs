//! Compile time of a generated 10,000-flag project (copies of the 50 realistic flag templates with
//! distinct keys and literal values: rollouts, property filters of many operators, multivariate,
//! regexes, a group flag, an inactive flag).
//!
//! Only `CompiledProject::compile` is timed; the `Definitions` are deserialized once before.
//! Dropping the compiled project is excluded too (`iter_with_large_drop`). `with_flag_10k` times
//! the incremental path a flag write takes: the same project with one flag changed
//! (`CompiledProject::with_flag`); `with_flag_10k_new_key` the same with a changed flag that reads
//! a property key no other flag reads.
//!
//! Run: `cargo bench -p vexil-bench --bench compile -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, SamplingMode};
use vexil_bench::generated_definitions;
use vexil_engine::CompiledProject;

/// Flags in the generated project.
const FLAGS: usize = 10_000;

fn compile(c: &mut Criterion) {
    let defs = generated_definitions(FLAGS);
    let project = CompiledProject::compile(&defs);
    assert_eq!(project.flags().len(), FLAGS);
    assert!(
        project.flags().iter().all(|f| f.defect().is_none()),
        "generated flags must compile without defects"
    );
    drop(project);

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    // ~100 ms per iteration: flat sampling keeps the run short with 10 samples.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("vexil_10k_flags", |b| {
        b.iter_with_large_drop(|| CompiledProject::compile(black_box(&defs)))
    });
    let project = CompiledProject::compile(&defs);
    let mut changed = defs.flags[FLAGS / 2].clone();
    changed.filters = serde_json::json!({"groups": [{"properties": [], "rollout_percentage": 42}]});
    group.sampling_mode(SamplingMode::Auto);
    group.sample_size(50);
    group.bench_function("with_flag_10k", |b| {
        b.iter_with_large_drop(|| project.with_flag(black_box(changed.clone())))
    });
    // A flag reading a key no other flag reads: the project's key table grows.
    let mut new_key = changed.clone();
    new_key.filters = serde_json::json!({"groups": [{"properties": [
        {"key": "never-read-before", "operator": "is_set"}], "rollout_percentage": 42}]});
    group.bench_function("with_flag_10k_new_key", |b| {
        b.iter_with_large_drop(|| project.with_flag(black_box(new_key.clone())))
    });
    group.finish();
}

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, spelled out so that the generated
    // public function does not trip the workspace's `missing_docs` lint.
    let mut c = Criterion::default().configure_from_args();
    compile(&mut c);
    c.final_summary();
}
