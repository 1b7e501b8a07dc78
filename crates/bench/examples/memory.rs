//! Memory held by a compiled 10,000-flag project.
//!
//! * Live heap: the exact bytes the compiled project keeps allocated, from a counting global
//!   allocator (`stats_alloc`; the unsafe `GlobalAlloc` impl lives in that crate, none here).
//! * RSS: what an operator sees (allocator slack, fragmentation and compile-time transients
//!   included). Generating the input frees a lot of memory that the allocator keeps resident and
//!   `compile` would reuse, so the RSS is read in a fresh child process that, like a server, only
//!   parses the definitions from JSON: `VmRSS`/`VmHWM` (`/proc/self/status`) before and after
//!   `compile`.
//!
//! Run: `cargo run --release -p vexil-bench --example memory`.

use std::alloc::System;
use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use serde_json::json;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use vexil_bench::{generated_definitions, realistic_flags};
use vexil_engine::{CompiledProject, Definitions};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const FLAGS: usize = 10_000;

/// `VmRSS` and `VmHWM` from `/proc/self/status`, in bytes.
fn rss_and_peak() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / (1024.0 * 1024.0))
}

/// Live heap bytes left by `f`'s result, kept alive until after the reading.
fn live_heap<T>(f: impl FnOnce() -> T) -> (T, i64, stats_alloc::Stats) {
    let region = Region::new(GLOBAL);
    let value = black_box(f());
    let s = region.change();
    let live = s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64;
    (value, live, s)
}

/// Child mode: parse the definitions JSON at `path` (as a server would load them), then compile
/// and keep the project; prints `rss_before rss_after peak_before peak_after` in bytes.
fn child(path: &str) {
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    let defs: Definitions = match serde_json::from_slice(&bytes) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    drop(bytes);
    let Some((rss0, peak0)) = rss_and_peak() else {
        return;
    };
    let project = black_box(CompiledProject::compile(&defs));
    if let Some((rss1, peak1)) = rss_and_peak() {
        println!("{rss0} {rss1} {peak0} {peak1}");
    }
    drop(project);
}

fn run_child(path: &std::path::Path) -> Option<Vec<f64>> {
    let out = Command::new(std::env::current_exe().ok()?)
        .arg("--child")
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let nums: Option<Vec<f64>> = text.split_whitespace().map(|n| n.parse().ok()).collect();
    nums.filter(|n| n.len() == 4)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(args.get(2).map_or("", String::as_str));
    }

    let defs = generated_definitions(FLAGS);
    let input_json = serde_json::to_vec(&defs).map(|v| v.len()).unwrap_or(0);
    let start = Instant::now();
    let (project, live, s) = live_heap(|| CompiledProject::compile(&defs));
    let elapsed = start.elapsed();
    println!("flags compiled:             {}", project.flags().len());
    println!("input definitions JSON:     {}", mib(input_json as f64));
    println!(
        "compile (one run, counting allocator on): {:.1} ms",
        elapsed.as_secs_f64() * 1e3
    );
    println!(
        "live heap of the project:   {} ({:.0} bytes/flag, {} live blocks)",
        mib(live as f64),
        live as f64 / FLAGS as f64,
        s.allocations as i64 - s.deallocations as i64
    );
    println!(
        "allocations during compile: {} ({} allocated in total)",
        s.allocations + s.reallocations,
        mib(s.bytes_allocated as f64)
    );
    drop(project);

    let path = std::env::temp_dir().join(format!("vexil-bench-{}.json", std::process::id()));
    let child = serde_json::to_vec(&defs)
        .ok()
        .and_then(|json| std::fs::write(&path, json).ok())
        .and_then(|()| run_child(&path));
    let _ = std::fs::remove_file(&path);
    if let Some(n) = child {
        let (rss0, rss1, peak0, peak1) = (n[0], n[1], n[2], n[3]);
        println!(
            "fresh process, definitions parsed from JSON: RSS {} -> {} after compile (+{}, {:.0} bytes/flag); peak RSS {} -> {}",
            mib(rss0),
            mib(rss1),
            mib(rss1 - rss0),
            (rss1 - rss0) / FLAGS as f64,
            mib(peak0),
            mib(peak1)
        );
    }

    // Where the heap goes: 1,000 copies of one flag shape each, live bytes per flag.
    println!();
    println!("live heap per flag, by flag shape (1,000 flags each):");
    let templates = realistic_flags(1);
    for key in [
        "rollout-6-1",
        "country-na-1",
        "acme-pro-adults-1",
        "mv-abc-1",
        "new-app-chrome-1",
        "regex-email-1",
        "regex-browser-1",
    ] {
        let Some(template) = templates.iter().find(|f| f["key"] == key) else {
            continue;
        };
        let flags: Vec<_> = (0..1_000)
            .map(|i| {
                let mut f = template.clone();
                f["key"] = json!(format!("{key}-{i}"));
                f
            })
            .collect();
        let defs: Definitions = match serde_json::from_value(json!({ "flags": flags })) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let (project, live, _) = live_heap(|| CompiledProject::compile(&defs));
        println!(
            "  {:<16} {:>6.0} bytes/flag",
            key.trim_end_matches("-1"),
            live as f64 / 1_000.0
        );
        drop(project);
    }
}
