//! Criterion benches of the workloads W1–W7 beside their baselines, one group per workload,
//! throughput in operations (steps, yields, awaits, Deferreds) so criterion reports time per op.
//!
//! `cargo bench -p defer-bench --bench workloads [-- FILTER]`. The `workloads` binary measures
//! the same functions with a simpler harness and also counts allocations.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use defer_bench::workloads;

fn bench_workloads(c: &mut Criterion) {
    let all = workloads::all();
    let mut i = 0;
    while i < all.len() {
        let name = all[i].workload();
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(all[i].n));
        while i < all.len() && all[i].workload() == name {
            let w = &all[i];
            group.bench_function(w.implementation(), |b| b.iter(|| black_box(w.run())));
            i += 1;
        }
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

fn main() {
    let mut c = config();
    bench_workloads(&mut c);
    c.final_summary();
}
