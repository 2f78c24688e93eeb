//! The `get_users` example's code path: a real HTTP/1.1 exchange with the hyper server on
//! loopback, then a closed port and the `ConnectionError` branch.

use defer_core::ensure_deferred;
use defer_core::testing::assert_no_result;
use defer_core::tokio::react;
use defer_examples::http::{
    Client, ConnectionError, Log, Server, StatusError, closed_port, get_users, sample_users,
};

#[test]
fn get_users_decodes_the_servers_json_then_returns_empty_on_a_closed_port() {
    let log = Log::default();
    let l = log.clone();
    let (found, refused) = react(move || {
        ensure_deferred(async move {
            let server = Server::start(sample_users())?;
            let pending = get_users(Client::new(server.addr()), l.clone());
            assert_no_result(&pending); // a real network round trip: nothing yet
            let found = pending.await?;
            assert!(l.lines().is_empty(), "no connection error logged yet");
            let refused = get_users(Client::new(closed_port()?), l).await?;
            Ok((found, refused))
        })
    })
    .unwrap();
    assert_eq!(found, sample_users());
    assert_eq!(found[1].name, "Grace Hopper");
    assert!(refused.is_empty());
    assert_eq!(log.lines(), ["makeRequest failed due to connection error"]);
}

#[test]
fn make_request_to_a_closed_port_fails_with_connection_error() {
    let addr = closed_port().unwrap();
    let f = react(move || Client::new(addr).make_request("GET", "/users")).unwrap_err();
    let e = f
        .downcast_ref::<ConnectionError>()
        .expect("a ConnectionError");
    assert_eq!(e.addr(), addr);
    assert!(f.frames().any(|fr| fr.function() == "from_future"), "{f}");
}

#[test]
fn make_request_fails_with_status_error_on_a_404() {
    let f = react(|| {
        ensure_deferred(async {
            let server = Server::start(sample_users())?;
            Client::new(server.addr())
                .make_request("GET", "/nope")
                .await
        })
    })
    .unwrap_err();
    assert_eq!(
        f.downcast_ref::<StatusError>(),
        Some(&StatusError(hyper::StatusCode::NOT_FOUND))
    );
}

#[test]
fn get_users_lets_failures_other_than_connection_error_through() {
    // Only `except ConnectionError` is handled: a body that does not decode propagates.
    let log = Log::default();
    let l = log.clone();
    let f = react(move || {
        ensure_deferred(async move {
            let server = Server::start_raw(r#"{"not": "a list"}"#.to_owned())?;
            get_users(Client::new(server.addr()), l).await
        })
    })
    .unwrap_err();
    assert!(f.check::<serde_json::Error>(), "{f}");
    assert!(
        log.lines().is_empty(),
        "nothing logged: it was not a connection error"
    );
}
