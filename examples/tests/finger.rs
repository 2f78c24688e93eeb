//! The finger example: the protocol on the manual `Clock` (lookups and their timeout are
//! Deferreds on a scheduler), and the server on tokio with a real TCP client talking to it.

use std::rc::Rc;
use std::time::Duration;

use defer_core::TokioScheduler;
use defer_core::clock::Clock;
use defer_core::testing::{assert_no_result, success_result_of};
use defer_core::tokio::from_future;
use defer_core::tokio::react;
use defer_examples::finger::{INTERNAL_ERROR, NO_SUCH_USER, Server, UserDb, line_received, query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn db_on(scheduler: Rc<dyn defer_core::Scheduler>) -> UserDb {
    let db = UserDb::new(scheduler, ms(20), ms(200));
    db.add_user("moshez", "Happy and well", ms(10));
    db.add_user("slowpoke", "asleep", Duration::from_secs(60));
    db
}

#[test]
fn the_protocol_on_the_manual_clock() {
    let clock = Rc::new(Clock::new());
    let db = db_on(clock.clone());
    let known = line_received(&db, "moshez\r\n");
    let unknown = line_received(&db, "nobody");
    let slow = line_received(&db, "slowpoke");
    assert_no_result(&known);
    clock.advance(ms(10));
    assert_eq!(success_result_of(known), "Happy and well");
    assert_no_result(&unknown);
    clock.advance(ms(10));
    assert_eq!(success_result_of(unknown), NO_SUCH_USER);
    // The slow lookup times out at 200 ms: the timeout's TimeoutError becomes the polite answer.
    clock.advance(ms(179));
    assert_no_result(&slow);
    clock.advance(ms(1));
    assert_eq!(success_result_of(slow), INTERNAL_ERROR);
    // Its late answer, a minute later, is a no-op: the timeout cancelled the lookup.
    clock.advance(Duration::from_secs(60));
    assert_eq!(clock.pending_calls().len(), 0);
}

#[test]
fn the_server_answers_a_real_tcp_client() {
    // The client code is a tokio task of the LocalSet (`from_future`), not an `ensure_deferred`
    // coroutine: it awaits tokio futures directly and spawns tasks after them.
    let answers = react(|| {
        from_future(async {
            let db = db_on(Rc::new(TokioScheduler::new()));
            let server = Server::start(Rc::new(db))?;
            let mut answers = Vec::new();
            for user in ["moshez", "nobody", "slowpoke"] {
                answers.push(query(server.addr(), user).await?);
            }
            // Several clients at once: each connection is its own task, each answer its own
            // Deferred.
            let a = tokio::task::spawn_local(query(server.addr(), "moshez"));
            let b = tokio::task::spawn_local(query(server.addr(), "nobody"));
            answers.push(a.await??);
            answers.push(b.await??);
            Ok::<_, defer_core::Failure>(answers)
        })
    })
    .unwrap();
    assert_eq!(
        answers,
        [
            "Happy and well",
            NO_SUCH_USER,
            INTERNAL_ERROR,
            "Happy and well",
            NO_SUCH_USER
        ]
    );
}

#[test]
fn the_wire_format_is_one_line_then_close() {
    let raw = react(|| {
        from_future(async {
            let db = db_on(Rc::new(TokioScheduler::new()));
            let server = Server::start(Rc::new(db))?;
            // A hand-written client: the bytes on the wire, as `nc` would see them.
            let mut stream = tokio::net::TcpStream::connect(server.addr()).await?;
            stream.write_all(b"moshez\n").await?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await?; // returns: the server closed the connection
            Ok::<_, defer_core::Failure>(raw)
        })
    })
    .unwrap();
    assert_eq!(raw, b"Happy and well\r\n");
}
