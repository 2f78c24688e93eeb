//! The seed's `getUsers` over real HTTP: a hyper server on loopback serves `/users` as JSON, and
//! the `#[inline_callbacks]` function `get_users` fetches and decodes it through a Deferred
//! bridged from hyper's client. Then it calls a closed port, and the `ConnectionError` branch logs
//! and returns an empty list.
//!
//! Run it with `cargo run --example get_users`.

use std::process::ExitCode;

use defer_core::ensure_deferred;
use defer_core::tokio::react;
use defer_examples::http::{Client, Log, Server, closed_port, get_users, sample_users};

fn main() -> ExitCode {
    let log = Log::printing();
    // react: run the Deferred code on a current-thread tokio runtime, in a LocalSet, until the
    // Deferred that main returns fires.
    let outcome = react(move || {
        ensure_deferred(async move {
            let server = Server::start(sample_users())?;
            println!("server: listening on http://{}/users", server.addr());

            let users = get_users(Client::new(server.addr()), log.clone()).await?;
            println!("get_users() from {}:", server.addr());
            for user in &users {
                println!("  {:>2}  {}", user.id, user.name);
            }

            let closed = closed_port()?;
            println!("get_users() from {closed}, where nothing listens:");
            let none = get_users(Client::new(closed), log).await?;
            println!("  {none:?}");
            Ok((users.len(), none.len()))
        })
    });
    match outcome {
        Ok((found, 0)) if found > 0 => ExitCode::SUCCESS,
        Ok(counts) => {
            eprintln!("unexpected result counts {counts:?}");
            ExitCode::FAILURE
        }
        Err(failure) => {
            eprintln!("get_users failed:\n{failure}");
            ExitCode::FAILURE
        }
    }
}
