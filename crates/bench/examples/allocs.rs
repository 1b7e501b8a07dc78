//! Heap allocations per evaluation, Vexil vs posthog-rs, to check the "no heap allocation per
//! flag on the hot path" claim.
//!
//! A counting global allocator (`stats_alloc`, wrapping the system allocator; the unsafe
//! `GlobalAlloc` impl lives in that crate, none here) counts every allocation made while each
//! evaluator answers the same request `ROUNDS` times, after one untimed warm-up call (which fills
//! lazily built caches such as regex scratch space).
//!
//! Run: `cargo run --release -p vexil-bench --example allocs`.

use std::alloc::System;
use std::hint::black_box;

use serde_json::json;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use vexil_bench::{cases, Case, PosthogCase, VexilCase};
use vexil_engine::evaluate;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ROUNDS: usize = 1_000;

/// (allocations, bytes allocated) per call of `f`, averaged over `ROUNDS` calls.
fn per_call(mut f: impl FnMut()) -> (f64, f64) {
    f();
    let region = Region::new(GLOBAL);
    for _ in 0..ROUNDS {
        f();
    }
    let s = region.change();
    let allocs = (s.allocations + s.reallocations) as f64 / ROUNDS as f64;
    (allocs, s.bytes_allocated as f64 / ROUNDS as f64)
}

fn measure(case: &Case) -> ((f64, f64), (f64, f64), usize) {
    let v = VexilCase::new(case);
    let p = PosthogCase::new(case);
    let ctx = v.context();
    let vexil = per_call(|| {
        black_box(evaluate(black_box(&v.project), black_box(&ctx)));
    });
    let posthog = per_call(|| {
        for flag in black_box(&p.flags) {
            let _ = black_box(p.evaluate_one(flag));
        }
    });
    (vexil, posthog, p.flags.len())
}

/// `n` plain 50%-rollout flags and no properties: isolates per-flag cost from filter cost.
fn rollouts(n: usize) -> Case {
    let flags: Vec<_> = (0..n)
        .map(|i| {
            json!({"id": i + 1, "key": format!("rollout-{i}"), "active": true,
                   "filters": {"groups": [{"properties": [], "rollout_percentage": 50}]}})
        })
        .collect();
    Case {
        name: "rollouts",
        definitions: json!({"flags": flags}),
        person: json!({}),
        groups: json!({}),
        group_properties: json!({}),
    }
}

fn main() {
    println!("| case | flags | vexil allocs/call | vexil bytes/call | posthog-rs allocs/call | posthog-rs bytes/call |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut rows: Vec<(String, Case)> = cases()
        .into_iter()
        .map(|c| (c.name.to_owned(), c))
        .collect();
    for n in [1, 10, 50, 200] {
        rows.push((format!("rollout_50 x{n}"), rollouts(n)));
    }
    for (name, case) in &rows {
        let ((va, vb), (pa, pb), n) = measure(case);
        println!("| {name} | {n} | {va:.1} | {vb:.0} | {pa:.1} | {pb:.0} |");
    }

    // Which flags of the realistic project allocate in Vexil: each flag alone, minus the fixed
    // cost of a one-flag evaluation (the result vectors).
    let base = rollouts(1);
    let v = VexilCase::new(&base);
    let ctx = v.context();
    let (fixed, _) = per_call(|| {
        black_box(evaluate(black_box(&v.project), black_box(&ctx)));
    });
    let e = vexil_bench::case_e_project_50();
    println!();
    println!("Vexil flags of e_project_50 that allocate beyond the fixed {fixed:.0} per call:");
    for f in e.definitions["flags"].as_array().into_iter().flatten() {
        let mut single = e.clone();
        single.definitions["flags"] = json!([f]);
        let v = VexilCase::new(&single);
        let ctx = v.context();
        let (a, b) = per_call(|| {
            black_box(evaluate(black_box(&v.project), black_box(&ctx)));
        });
        if a > fixed {
            println!(
                "  {}: {:.1} extra allocs/call ({b:.0} bytes/call in total)",
                f["key"],
                a - fixed
            );
        }
    }
}
