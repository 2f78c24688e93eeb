//! The patterns of Twisted's "Introduction to Deferreds", each written twice: as the plain
//! synchronous Rust program the seed starts from, and as the Deferred version it translates to.
//! The `tour` example prints both outcomes side by side; the tests assert they agree. `http` is
//! the seed's `getUsers` over real HTTP, `finger` Twisted's finger tutorial server on tokio.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod finger;
pub mod http;
pub mod seed;
