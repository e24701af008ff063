//! Black-box tests of `everynode_store` through its public API. One test binary with a
//! module per concern (linking one binary is much cheaper than five on a 2-core machine).

mod common;
mod durability;
mod list;
mod model;
mod ops;
mod throughput;
mod watch;
