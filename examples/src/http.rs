//! The seed's `getUsers` over a real HTTP/1.1 exchange on loopback.
//!
//! A hyper server answers `GET /users` with a JSON list of [`User`]s. A [`Client`]'s
//! [`make_request`](Client::make_request) returns a `Deferred<String>` bridged from hyper's client
//! future with [`from_future`], and [`get_users`] is the seed's `@inlineCallbacks getUsers`: it
//! yields the request, decodes the body with `serde_json`, and on a [`ConnectionError`] logs
//! `makeRequest failed due to connection error` and returns an empty list.
//!
//! Everything runs on one thread, in a tokio `LocalSet` (see
//! [`defer_core::tokio`]); [`react`](defer_core::tokio::react) sets one up.
//!
//! ```
//! use defer_core::{ensure_deferred, tokio::react};
//! use defer_examples::http::{Client, Log, Server, closed_port, get_users, sample_users};
//!
//! let log = Log::default();
//! let l = log.clone();
//! let (found, refused) = react(move || {
//!     ensure_deferred(async move {
//!         let server = Server::start(sample_users())?;
//!         let found = get_users(Client::new(server.addr()), l.clone()).await?;
//!         let refused = get_users(Client::new(closed_port()?), l).await?;
//!         Ok((found, refused))
//!     })
//! })
//! .unwrap();
//! assert_eq!(found, sample_users());
//! assert!(refused.is_empty());
//! assert_eq!(log.lines(), ["makeRequest failed due to connection error"]);
//! ```

use std::cell::RefCell;
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use defer_core::tokio::from_future;
use defer_core::{Deferred, Failure, inline_callbacks, yield_};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, spawn_local};

/// A user, as `/users` serves it in JSON.
///
/// ```
/// let u: defer_examples::http::User = serde_json::from_str(r#"{"id": 1, "name": "ada"}"#).unwrap();
/// assert_eq!(u.name, "ada");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: u32,
    /// The user's name.
    pub name: String,
}

/// The users the example's server serves.
///
/// ```
/// assert_eq!(defer_examples::http::sample_users().len(), 3);
/// ```
pub fn sample_users() -> Vec<User> {
    [
        (1, "Ada Lovelace"),
        (2, "Grace Hopper"),
        (3, "Barbara Liskov"),
    ]
    .into_iter()
    .map(|(id, name)| User {
        id,
        name: name.to_owned(),
    })
    .collect()
}

/// The client could not connect to the server: the seed's `ConnectionError`, made from the
/// connect error of the TCP stream under hyper's client.
///
/// ```
/// use defer_examples::http::ConnectionError;
/// let e = ConnectionError::new("127.0.0.1:9".parse().unwrap(), std::io::ErrorKind::ConnectionRefused.into());
/// assert!(e.to_string().starts_with("cannot connect to 127.0.0.1:9"));
/// ```
#[derive(Debug)]
pub struct ConnectionError {
    addr: SocketAddr,
    source: io::Error,
}

impl ConnectionError {
    /// The connect error `source` of a connection to `addr`.
    ///
    /// ```
    /// use defer_examples::http::ConnectionError;
    /// let e = ConnectionError::new("127.0.0.1:9".parse().unwrap(), std::io::Error::other("x"));
    /// assert_eq!(e.addr().port(), 9);
    /// ```
    pub fn new(addr: SocketAddr, source: io::Error) -> Self {
        ConnectionError { addr, source }
    }

    /// The address that could not be reached.
    ///
    /// ```
    /// use defer_examples::http::ConnectionError;
    /// let e = ConnectionError::new("127.0.0.1:80".parse().unwrap(), std::io::Error::other("x"));
    /// assert_eq!(e.addr().to_string(), "127.0.0.1:80");
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot connect to {}: {}", self.addr, self.source)
    }
}

impl Error for ConnectionError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// The server answered with a status other than success.
///
/// ```
/// let e = defer_examples::http::StatusError(hyper::StatusCode::NOT_FOUND);
/// assert_eq!(e.to_string(), "the server answered 404 Not Found");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusError(pub StatusCode);

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server answered {}", self.0)
    }
}

impl Error for StatusError {}

/// The example's log: the seed's `log.failure(...)`. It keeps the lines for tests and, made
/// with [`Log::printing`], also prints them with the failure.
///
/// ```
/// let log = defer_examples::http::Log::default();
/// log.failure("it broke", &defer_core::Failure::msg("because"));
/// assert_eq!(log.lines(), ["it broke"]);
/// ```
#[derive(Clone, Default)]
pub struct Log {
    lines: Rc<RefCell<Vec<String>>>,
    print: bool,
}

impl Log {
    /// A log that also prints each line, and the failure's kind and message, to stdout.
    ///
    /// ```
    /// defer_examples::http::Log::printing().failure("shown", &defer_core::Failure::msg("why"));
    /// ```
    pub fn printing() -> Self {
        Log {
            print: true,
            ..Log::default()
        }
    }

    /// Logs `line` about `failure`, as Twisted's `log.failure(line)` inside an `except` does.
    ///
    /// ```
    /// let log = defer_examples::http::Log::default();
    /// log.failure("lost", &defer_core::Failure::msg("x"));
    /// assert_eq!(log.lines().len(), 1);
    /// ```
    pub fn failure(&self, line: &str, failure: &Failure) {
        if self.print {
            println!(
                "log: {line}\n     {}: {}",
                failure.type_name(),
                failure.message()
            );
        }
        self.lines.borrow_mut().push(line.to_owned());
    }

    /// The lines logged so far.
    ///
    /// ```
    /// assert!(defer_examples::http::Log::default().lines().is_empty());
    /// ```
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }
}

/// A hyper HTTP/1.1 server on a loopback port, serving `GET /users` as JSON (and 404 for anything
/// else) from tasks of the current `LocalSet`. Dropping it stops accepting connections.
///
/// ```
/// use defer_examples::http::{Server, sample_users};
/// let port = defer_core::tokio::react(|| {
///     let server = Server::start(sample_users()).unwrap();
///     defer_core::succeed(server.addr().port())
/// })
/// .unwrap();
/// assert_ne!(port, 0);
/// ```
pub struct Server {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Server {
    /// Binds `127.0.0.1` on a free port and starts serving `users`. Must be called inside a
    /// tokio `LocalSet`, on a runtime with I/O enabled.
    ///
    /// ```
    /// # defer_core::tokio::react(|| {
    /// let server = defer_examples::http::Server::start(vec![]).unwrap();
    /// assert!(server.addr().ip().is_loopback());
    /// # defer_core::succeed(()) }).unwrap();
    /// ```
    pub fn start(users: Vec<User>) -> io::Result<Server> {
        let json = serde_json::to_string(&users).map_err(io::Error::other)?;
        Server::start_raw(json)
    }

    /// As [`start`](Server::start), serving `json` verbatim as `/users`' body (to show what a
    /// body that does not decode does).
    ///
    /// ```
    /// # defer_core::tokio::react(|| {
    /// let server = defer_examples::http::Server::start_raw("not json".to_owned()).unwrap();
    /// # let _ = server;
    /// # defer_core::succeed(()) }).unwrap();
    /// ```
    pub fn start_raw(json: String) -> io::Result<Server> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let body = Bytes::from(json);
        let accept = spawn_local(async move {
            while let Ok((stream, _peer)) = listener.accept().await {
                let body = body.clone();
                let service = service_fn(move |req| serve(req, body.clone()));
                spawn_local(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = conn.await {
                        eprintln!("server: connection error: {e}");
                    }
                });
            }
        });
        Ok(Server { addr, accept })
    }

    /// The address the server listens on.
    ///
    /// ```
    /// # defer_core::tokio::react(|| {
    /// let server = defer_examples::http::Server::start(vec![]).unwrap();
    /// assert_ne!(server.addr().port(), 0);
    /// # defer_core::succeed(()) }).unwrap();
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The server's one route.
async fn serve(req: Request<Incoming>, users: Bytes) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = if req.method() == Method::GET && req.uri().path() == "/users" {
        Response::builder()
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(users))
    } else {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"not found")))
    };
    Ok(response.expect("a response built from valid parts"))
}

/// An address on which nothing listens: a loopback port that was bound and released.
///
/// ```
/// let addr = defer_examples::http::closed_port().unwrap();
/// assert!(std::net::TcpStream::connect(addr).is_err());
/// ```
pub fn closed_port() -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.local_addr()
}

/// An HTTP/1.1 client of one server, made of hyper's client connection over a tokio TCP stream.
///
/// ```
/// let client = defer_examples::http::Client::new("127.0.0.1:8080".parse().unwrap());
/// assert_eq!(client.addr().port(), 8080);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Client {
    addr: SocketAddr,
}

impl Client {
    /// A client of the server at `addr`.
    ///
    /// ```
    /// let c = defer_examples::http::Client::new("127.0.0.1:1".parse().unwrap());
    /// # let _ = c;
    /// ```
    pub fn new(addr: SocketAddr) -> Self {
        Client { addr }
    }

    /// The server's address.
    ///
    /// ```
    /// let c = defer_examples::http::Client::new("127.0.0.1:1".parse().unwrap());
    /// assert_eq!(c.addr().port(), 1);
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The seed's `makeRequest(method, path)`: a Deferred of the response body, bridged from
    /// hyper's client future with [`from_future`]. It fails with [`ConnectionError`] when the
    /// server cannot be reached, [`StatusError`] on a non-success status, or hyper's error.
    /// Must be called inside a tokio `LocalSet`.
    ///
    /// ```
    /// use defer_examples::http::{Client, Server, sample_users};
    /// let body = defer_core::tokio::react(|| {
    ///     let server = Server::start(sample_users()).unwrap();
    ///     Client::new(server.addr())
    ///         .make_request("GET", "/users")
    ///         .add_callback(move |body| { drop(server); Ok(body) })
    /// })
    /// .unwrap();
    /// assert!(body.contains("Grace Hopper"));
    /// ```
    pub fn make_request(&self, method: &str, path: &str) -> Deferred<String> {
        from_future(request(self.addr, method.to_owned(), path.to_owned()))
    }
}

/// One request on a fresh connection: connect, handshake, send, read the whole body.
async fn request(addr: SocketAddr, method: String, path: String) -> Result<String, Failure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| ConnectionError::new(addr, e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    spawn_local(async move {
        // Drives the connection; it ends when the response has been read and `sender` dropped.
        let _ = connection.await;
    });
    let req = Request::builder()
        .method(Method::from_bytes(method.as_bytes())?)
        .uri(path)
        .header(HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(req).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(StatusError(status).into());
    }
    Ok(String::from_utf8(body.to_vec())?)
}

/// The seed's `@inlineCallbacks getUsers`: requests `/users` and decodes the JSON body; on a
/// [`ConnectionError`] it logs `makeRequest failed due to connection error` and returns an empty
/// list. Any other failure (a bad status, bad JSON) propagates.
///
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
///
/// ```
/// use defer_examples::http::{Client, Log, closed_port, get_users};
/// let log = Log::default();
/// let client = Client::new(closed_port().unwrap());
/// let users = defer_core::tokio::react(|| get_users(client, log.clone())).unwrap();
/// assert!(users.is_empty());
/// assert_eq!(log.lines(), ["makeRequest failed due to connection error"]);
/// ```
#[inline_callbacks]
pub fn get_users(client: Client, log: Log) -> Deferred<Vec<User>> {
    let response_body = match yield_!(client.make_request("GET", "/users")) {
        Ok(body) => body,
        Err(f) => {
            let e = f.trap::<ConnectionError>()?;
            log.failure("makeRequest failed due to connection error", e.failure());
            return Ok(vec![]);
        }
    };
    Ok(serde_json::from_str(&response_body)?)
}
