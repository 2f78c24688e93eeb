//! Twisted's finger tutorial server on tokio: a TCP server on loopback whose line protocol answers
//! each query with a Deferred (a user lookup that is itself a Deferred, with a timeout on tokio's
//! timer).
//!
//! `cargo run --example finger` starts the server on a free port, queries it with a real TCP
//! client (a known user, an unknown one, and one whose lookup times out), prints the answers and
//! exits. `cargo run --example finger -- --serve [ADDR]` serves until interrupted (default
//! `127.0.0.1:7979`; try `echo moshez | nc 127.0.0.1 7979`).

use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use defer_core::tokio::{from_future, react};
use defer_core::{Deferred, Failure, TokioScheduler};
use defer_examples::finger::{Server, UserDb, query};

fn database() -> UserDb {
    let db = UserDb::new(
        Rc::new(TokioScheduler::new()),
        Duration::from_millis(20), // how long the backend takes to say "no such user"
        Duration::from_millis(200), // how long any lookup may take
    );
    db.add_user("moshez", "Happy and well", Duration::from_millis(10));
    db.add_user("glyph", "Writing code", Duration::from_millis(30));
    db.add_user(
        "slowpoke",
        "(never answers in time)",
        Duration::from_secs(60),
    );
    db
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = if args.first().map(String::as_str) == Some("--serve") {
        let addr = args
            .get(1)
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:7979".to_owned());
        react(move || {
            let server = match Server::start_on(&addr, Rc::new(database())) {
                Ok(server) => server,
                Err(e) => return defer_core::fail(e),
            };
            println!("finger server on {}; Ctrl-C to stop", server.addr());
            // A Deferred that never fires: the server runs until the process is stopped. The
            // trigger is detached on purpose (dropping it would fail the Deferred at once).
            let (forever, trigger) = Deferred::<()>::new();
            trigger.detach();
            forever.add_both(move |r| {
                drop(server);
                r
            })
        })
    } else {
        react(|| {
            // The client is a task of the LocalSet (`from_future`): it awaits tokio's futures.
            from_future(async {
                let server = Server::start(Rc::new(database()))?;
                println!("finger server on {}", server.addr());
                for user in ["moshez", "glyph", "nobody", "slowpoke"] {
                    let answer = query(server.addr(), user).await?;
                    println!("finger {user:<9} -> {answer}");
                }
                Ok::<_, Failure>(())
            })
        })
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("finger: {f}");
            ExitCode::FAILURE
        }
    }
}
