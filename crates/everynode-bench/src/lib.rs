//! Criterion micro-benchmarks of the API server's request path live in `benches/`; this
//! crate has no code of its own. Run them with
//!
//! ```text
//! cargo bench -p everynode-bench
//! ```
//!
//! The system-level benchmarks (`bench api`, `bench commit`, `bench converge`,
//! `bench rollout`) are subcommands of the `everynode` binary; `BENCHMARKS.md` has the
//! figures of both.
