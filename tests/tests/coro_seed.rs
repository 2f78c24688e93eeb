//! The seed's coroutine examples (`defer-intro.md`, "Inline callbacks" and "Coroutines with
//! async/await"): `getUsers` as a plain chain, with `#[inline_callbacks]` and with an `async`
//! function under `ensure_deferred`, including the version that catches `ConnectionError`, logs it
//! and returns an empty list. Each runs against a pretend server that answers after the caller has
//! returned, with a body, a `ConnectionError`, or another error that must not be caught.

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::rc::Rc;

use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::unhandled;
use defer_core::{Deferred, Failure, Trigger, ensure_deferred, inline_callbacks, succeed, yield_};

/// The error the seed's `try`/`except` handles.
#[derive(Debug)]
struct ConnectionError(&'static str);
impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection refused by {}", self.0)
    }
}
impl Error for ConnectionError {}

/// What `json.loads` raises on a body it cannot read.
#[derive(Debug)]
struct JsonError(String);
impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected a JSON list of strings, got {:?}", self.0)
    }
}
impl Error for JsonError {}

/// Another failure of the request, which the seed's handler does not catch.
#[derive(Debug)]
struct TimeoutError;
impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request timed out")
    }
}
impl Error for TimeoutError {}

/// `json.loads` for the only shape used here: a list of strings without escapes.
fn json_loads(body: &str) -> Result<Vec<String>, Failure> {
    let inner = body
        .trim()
        .strip_prefix('[')
        .and_then(|b| b.strip_suffix(']'))
        .ok_or_else(|| JsonError(body.to_owned()))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|item| {
            item.trim()
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .map(str::to_owned)
                .ok_or_else(|| JsonError(body.to_owned()).into())
        })
        .collect()
}

/// The pretend HTTP client: `make_request` returns a pending Deferred and records the request;
/// the test answers it later with [`Server::answer`].
#[derive(Clone, Default)]
struct Server {
    requests: Rc<RefCell<Vec<Request>>>,
}

/// An outstanding request: `"METHOD path"` and the trigger that answers it.
type Request = (String, Trigger<String>);

/// How the server answers.
enum Answer {
    Body(&'static str),
    Refused,
    Timeout,
}

impl Server {
    fn make_request(&self, method: &str, path: &str) -> Deferred<String> {
        let (d, t) = Deferred::new();
        self.requests
            .borrow_mut()
            .push((format!("{method} {path}"), t));
        d
    }

    /// Answers the one outstanding request, which must be `GET /users`.
    fn answer(&self, answer: Answer) {
        let mut requests = std::mem::take(&mut *self.requests.borrow_mut());
        assert_eq!(requests.len(), 1, "one request outstanding");
        let (request, t) = requests.pop().unwrap();
        assert_eq!(request, "GET /users");
        match answer {
            Answer::Body(body) => t.callback(body.to_owned()),
            Answer::Refused => t.errback(ConnectionError("db.example")),
            Answer::Timeout => t.errback(TimeoutError),
        };
    }
}

/// The seed's `log`: `log.failure(message)` records the message and the failure.
type Logger = Rc<RefCell<Vec<String>>>;

fn log_failure(log: &Logger, message: &str, failure: &Failure) {
    log.borrow_mut()
        .push(format!("{message}: {}", failure.message()));
}

const LOGGED: &str = "makeRequest failed due to connection error: connection refused by db.example";

/// Runs `body` with a thread-local unhandled-failure hook and asserts that nothing was reported.
fn no_unhandled(body: impl FnOnce()) {
    let reported = Rc::new(RefCell::new(Vec::<String>::new()));
    let r = reported.clone();
    unhandled::with_hook(move |f| r.borrow_mut().push(f.to_string()), body);
    assert!(
        reported.borrow().is_empty(),
        "reported as unhandled: {:?}",
        reported.borrow()
    );
}

// ---------------------------------------------------------------------- plain getUsers

/// ```python
/// def getUsers():
///     d = makeRequest("GET", "/users")
///     d.addCallback(json.loads)
///     return d
/// ```
fn get_users_chain(server: &Server) -> Deferred<Vec<String>> {
    server
        .make_request("GET", "/users")
        .add_callback(|body| json_loads(&body))
}

/// ```python
/// @inlineCallbacks
/// def getUsers(self):
///     responseBody = yield makeRequest("GET", "/users")
///     returnValue(json.loads(responseBody))
/// ```
#[inline_callbacks]
fn get_users_inline(server: Server) -> Deferred<Vec<String>> {
    let response_body = yield_!(server.make_request("GET", "/users"))?;
    Ok(json_loads(&response_body)?)
}

/// ```python
/// async def getUsers():
///     return json.loads(await makeRequest("GET", "/users"))
/// ```
async fn get_users_async(server: Server) -> Result<Vec<String>, Failure> {
    json_loads(&server.make_request("GET", "/users").await?)
}

/// `getUsers` written three ways.
const GET_USERS: [fn(&Server) -> Deferred<Users>; 3] = [
    get_users_chain,
    |s| get_users_inline(s.clone()),
    |s| ensure_deferred(get_users_async(s.clone())),
];

type Users = Vec<String>;

#[test]
fn get_users_three_ways_agree_on_success() {
    no_unhandled(|| {
        for (i, get_users) in GET_USERS.into_iter().enumerate() {
            let server = Server::default();
            let d = get_users(&server);
            // The request is out; nothing has come back yet.
            assert_no_result(&d);
            server.answer(Answer::Body(r#"["ada", "grace"]"#));
            assert_eq!(success_result_of(d), ["ada", "grace"], "way {i}");
        }
    });
}

#[test]
fn get_users_three_ways_agree_on_failure() {
    no_unhandled(|| {
        for (i, get_users) in GET_USERS.into_iter().enumerate() {
            // The request fails: the failure reaches the caller unchanged.
            let server = Server::default();
            let d = get_users(&server);
            server.answer(Answer::Refused);
            let f = failure_result_of(d);
            assert!(f.check::<ConnectionError>(), "way {i}: {f}");
            assert_eq!(f.message(), "connection refused by db.example");

            // json.loads raises: the failure is the parse error.
            let server = Server::default();
            let d = get_users(&server);
            server.answer(Answer::Body("<html>"));
            let f = failure_result_of(d);
            assert!(f.check::<JsonError>(), "way {i}: {f}");
            assert_eq!(
                f.message(),
                "expected a JSON list of strings, got \"<html>\""
            );
        }
    });
}

// ---------------------------------------------- getUsers that logs a ConnectionError and returns []

/// ```python
/// def getUsers():
///     d = makeRequest("GET", "/users")
///     def connectionError(failure):
///         failure.trap(ConnectionError)
///         log.failure("makeRequest failed due to connection error", failure)
///         return []
///     d.addCallbacks(json.loads, connectionError)
///     return d
/// ```
fn get_users_chain_handled(server: &Server, log: Logger) -> Deferred<Vec<String>> {
    server.make_request("GET", "/users").add_callbacks(
        |body| json_loads(&body),
        move |failure| {
            let trapped = failure.trap::<ConnectionError>()?;
            log_failure(
                &log,
                "makeRequest failed due to connection error",
                trapped.failure(),
            );
            Ok(Vec::new())
        },
    )
}

/// ```python
/// @inlineCallbacks
/// def getUsers(self):
///     try:
///         responseBody = yield makeRequest("GET", "/users")
///     except ConnectionError:
///         log.failure("makeRequest failed due to connection error")
///         returnValue([])
///     returnValue(json.loads(responseBody))
/// ```
#[inline_callbacks]
fn get_users_inline_handled(server: Server, log: Logger) -> Deferred<Vec<String>> {
    let response_body = match yield_!(server.make_request("GET", "/users")) {
        Ok(body) => body,
        Err(failure) => {
            let trapped = failure.trap::<ConnectionError>()?;
            log_failure(
                &log,
                "makeRequest failed due to connection error",
                trapped.failure(),
            );
            return Ok(Vec::new());
        }
    };
    Ok(json_loads(&response_body)?)
}

/// ```python
/// async def getUsers():
///     try:
///         return json.loads(await makeRequest("GET", "/users"))
///     except ConnectionError:
///         log.failure("makeRequest failed due to connection error")
///         return []
/// ```
async fn get_users_async_handled(server: Server, log: Logger) -> Result<Vec<String>, Failure> {
    let attempt = async { json_loads(&server.make_request("GET", "/users").await?) };
    match attempt.await {
        Ok(users) => Ok(users),
        Err(failure) => {
            let trapped = failure.trap::<ConnectionError>()?;
            log_failure(
                &log,
                "makeRequest failed due to connection error",
                trapped.failure(),
            );
            Ok(Vec::new())
        }
    }
}

type Handled = fn(&Server, Logger) -> Deferred<Vec<String>>;

const HANDLED: [Handled; 3] = [
    get_users_chain_handled,
    |s, log| get_users_inline_handled(s.clone(), log),
    |s, log| ensure_deferred(get_users_async_handled(s.clone(), log)),
];

#[test]
fn get_users_handled_succeeds_without_logging() {
    no_unhandled(|| {
        for (i, get_users) in HANDLED.into_iter().enumerate() {
            let (server, log) = (Server::default(), Logger::default());
            let d = get_users(&server, log.clone());
            assert_no_result(&d);
            server.answer(Answer::Body(r#"["ada"]"#));
            assert_eq!(success_result_of(d), ["ada"], "way {i}");
            assert!(log.borrow().is_empty(), "way {i}");
        }
    });
}

#[test]
fn get_users_handled_logs_a_connection_error_and_returns_an_empty_list() {
    no_unhandled(|| {
        for (i, get_users) in HANDLED.into_iter().enumerate() {
            let (server, log) = (Server::default(), Logger::default());
            let d = get_users(&server, log.clone());
            assert_no_result(&d);
            assert!(log.borrow().is_empty());
            server.answer(Answer::Refused);
            assert_eq!(success_result_of(d), Vec::<String>::new(), "way {i}");
            assert_eq!(*log.borrow(), [LOGGED], "way {i}");
        }
    });
}

#[test]
fn get_users_handled_lets_other_errors_through_unlogged() {
    no_unhandled(|| {
        for (i, get_users) in HANDLED.into_iter().enumerate() {
            // `failure.trap(ConnectionError)` re-raises anything else.
            let (server, log) = (Server::default(), Logger::default());
            let d = get_users(&server, log.clone());
            server.answer(Answer::Timeout);
            let f = failure_result_of(d);
            assert!(f.check::<TimeoutError>(), "way {i}: {f}");
            assert_eq!(f.message(), "request timed out");
            assert!(log.borrow().is_empty(), "way {i}");

            // A body that json.loads rejects is not a ConnectionError either (and, as in the
            // seed's `addCallbacks`, the chain version's errback never sees json.loads' failure).
            let (server, log) = (Server::default(), Logger::default());
            let d = get_users(&server, log.clone());
            server.answer(Answer::Body("not json"));
            let f = failure_result_of(d);
            assert!(f.check::<JsonError>(), "way {i}: {f}");
            assert!(log.borrow().is_empty(), "way {i}");
        }
    });
}

#[test]
fn do_wraps_get_users_with_ensure_deferred_and_adds_a_callback() {
    // def do(): d = ensureDeferred(getUsers()); d.addCallback(print); return d
    no_unhandled(|| {
        let printed = Rc::new(RefCell::new(Vec::new()));
        let (server, log) = (Server::default(), Logger::default());
        let p = printed.clone();
        let d = ensure_deferred(get_users_async_handled(server.clone(), log.clone())).add_callback(
            move |users| {
                p.borrow_mut().push(format!("{users:?}"));
                Ok(())
            },
        );
        assert!(printed.borrow().is_empty());
        server.answer(Answer::Body(r#"["ada", "grace"]"#));
        assert_eq!(*printed.borrow(), [r#"["ada", "grace"]"#]);
        success_result_of(d);
    });
}

#[test]
fn only_the_outermost_coroutine_needs_ensure_deferred() {
    // async def foo(): return await someFunctionThatReturnsADeferred()
    // async def bar(): baz = await someOtherDeferredFunction(); return baz + await foo()
    no_unhandled(|| {
        async fn foo(source: Deferred<i32>) -> Result<i32, Failure> {
            source.await
        }
        async fn bar(other: Deferred<i32>, source: Deferred<i32>) -> Result<i32, Failure> {
            let baz = other.await?;
            let foo_result = foo(source).await?;
            Ok(baz + foo_result)
        }
        let (source, t) = Deferred::new();
        let d = ensure_deferred(bar(succeed(40), source));
        assert_no_result(&d);
        t.callback(2);
        assert_eq!(success_result_of(d), 42);
    });
}
