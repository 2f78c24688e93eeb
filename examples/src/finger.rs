//! Twisted's finger tutorial server ("The Evolution of Finger"), on tokio: a TCP server on
//! loopback speaking a line protocol, whose handler returns a Deferred.
//!
//! A client connects, sends a user name and a line end; the server looks the user up and answers
//! with one line, then closes the connection. As in the tutorial, the lookup is itself a Deferred
//! ([`UserDb::get_user`]: Twisted's `factory.getUser`), the protocol chains the answer onto it
//! ([`line_received`]: `d.addErrback(onError); d.addCallback(writeResponse)`), and a lookup that
//! takes too long times out (`d.addTimeout`) and is answered with `Internal error in server`.
//!
//! The database runs on any [`Scheduler`]: the manual [`Clock`](defer_core::clock::Clock) in
//! tests, [`TokioScheduler`](defer_core::TokioScheduler) when served.
//!
//! ```
//! use defer_core::{clock::Clock, testing::{assert_no_result, success_result_of}};
//! use defer_examples::finger::{UserDb, line_received};
//! use std::{rc::Rc, time::Duration};
//!
//! let clock = Rc::new(Clock::new());
//! let db = UserDb::new(clock.clone(), Duration::from_secs(1), Duration::from_secs(5));
//! db.add_user("moshez", "Happy and well", Duration::from_millis(100));
//! let answer = line_received(&db, "moshez");
//! assert_no_result(&answer);                  // the lookup has not answered yet
//! clock.advance(Duration::from_millis(100));
//! assert_eq!(success_result_of(answer), "Happy and well");
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use defer_core::errors::TimeoutError;
use defer_core::{Deferred, Scheduler};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, spawn_local};

/// The answer for a user the database does not know (the tutorial's `b"No such user"`).
pub const NO_SUCH_USER: &str = "No such user";
/// The answer when the lookup failed or timed out (the tutorial's `onError`).
pub const INTERNAL_ERROR: &str = "Internal error in server";

/// The longest line the server reads: a finger query is a user name.
const MAX_LINE: usize = 1024;

struct Entry {
    status: String,
    /// How long the backend takes to answer for this user.
    latency: Duration,
}

/// The users' statuses, behind a lookup that answers later, as a real backend would: Twisted's
/// finger factory with a deferred `getUser`.
///
/// ```
/// use defer_core::{clock::Clock, testing::success_result_of};
/// use defer_examples::finger::UserDb;
/// use std::{rc::Rc, time::Duration};
///
/// let clock = Rc::new(Clock::new());
/// let db = UserDb::new(clock.clone(), Duration::from_secs(1), Duration::from_secs(5));
/// let nobody = db.get_user("nobody");
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(success_result_of(nobody), None);
/// ```
pub struct UserDb {
    scheduler: Rc<dyn Scheduler>,
    users: RefCell<HashMap<String, Entry>>,
    /// How long the backend takes to say it does not know a user.
    miss_latency: Duration,
    /// How long a lookup may take before it times out.
    timeout: Duration,
}

impl UserDb {
    /// An empty database on `scheduler`, whose lookups of unknown users take `miss_latency` and
    /// whose every lookup times out after `timeout`.
    ///
    /// ```
    /// use defer_examples::finger::UserDb;
    /// use std::{rc::Rc, time::Duration};
    /// let db = UserDb::new(Rc::new(defer_core::clock::Clock::new()), Duration::ZERO, Duration::from_secs(1));
    /// db.add_user("a", "here", Duration::ZERO);
    /// ```
    pub fn new(scheduler: Rc<dyn Scheduler>, miss_latency: Duration, timeout: Duration) -> UserDb {
        UserDb {
            scheduler,
            users: RefCell::default(),
            miss_latency,
            timeout,
        }
    }

    /// Adds (or replaces) a user, whose lookups take `latency`.
    ///
    /// ```
    /// use defer_examples::finger::UserDb;
    /// use std::{rc::Rc, time::Duration};
    /// let db = UserDb::new(Rc::new(defer_core::clock::Clock::new()), Duration::ZERO, Duration::from_secs(1));
    /// db.add_user("moshez", "Happy and well", Duration::from_millis(5));
    /// ```
    pub fn add_user(&self, name: &str, status: &str, latency: Duration) {
        self.users.borrow_mut().insert(
            name.to_owned(),
            Entry {
                status: status.to_owned(),
                latency,
            },
        );
    }

    /// Looks `user` up: a Deferred that fires with the user's status (`None` for an unknown user)
    /// when the backend answers, or fails with [`TimeoutError`] if that takes longer than the
    /// database's timeout. Twisted's `getUser`, with `addTimeout`.
    ///
    /// ```
    /// use defer_core::{clock::Clock, errors::TimeoutError, testing::failure_result_of};
    /// use defer_examples::finger::UserDb;
    /// use std::{rc::Rc, time::Duration};
    ///
    /// let clock = Rc::new(Clock::new());
    /// let db = UserDb::new(clock.clone(), Duration::ZERO, Duration::from_secs(5));
    /// db.add_user("slow", "asleep", Duration::from_secs(60));
    /// let d = db.get_user("slow");
    /// clock.advance(Duration::from_secs(5));
    /// assert!(failure_result_of(d).check::<TimeoutError>());
    /// ```
    pub fn get_user(&self, user: &str) -> Deferred<Option<String>> {
        let (status, latency) = match self.users.borrow().get(user) {
            Some(e) => (Some(e.status.clone()), e.latency),
            None => (None, self.miss_latency),
        };
        // The backend answers later; a timed-out lookup cancels the Deferred, and the late
        // answer is then a no-op (`callback` returns `false`).
        let (d, trigger) = Deferred::new();
        self.scheduler
            .call_later(latency, Box::new(move || trigger.callback(status)));
        d.add_timeout(self.timeout, &*self.scheduler)
    }
}

/// The protocol's handler for one line: the user's status, [`NO_SUCH_USER`], or
/// [`INTERNAL_ERROR`] when the lookup failed (it timed out, say). The tutorial's `lineReceived`:
///
/// ```python
/// def lineReceived(self, user):
///     d = self.factory.getUser(user)
///     d.addErrback(onError)
///     d.addCallback(writeResponse)
/// ```
///
/// (writing the response is the server's part here: [`serve`]).
///
/// ```
/// use defer_core::{clock::Clock, testing::success_result_of};
/// use defer_examples::finger::{UserDb, line_received, NO_SUCH_USER};
/// use std::{rc::Rc, time::Duration};
///
/// let clock = Rc::new(Clock::new());
/// let db = UserDb::new(clock.clone(), Duration::ZERO, Duration::from_secs(5));
/// let d = line_received(&db, "nobody");
/// clock.advance(Duration::ZERO);
/// assert_eq!(success_result_of(d), NO_SUCH_USER);
/// ```
pub fn line_received(db: &UserDb, line: &str) -> Deferred<String> {
    db.get_user(line.trim())
        .add_callback(|status| Ok(status.unwrap_or_else(|| NO_SUCH_USER.to_owned())))
        .add_errback(|f| {
            // The tutorial's onError logs the failure and answers politely.
            if f.check::<TimeoutError>() {
                eprintln!("finger: lookup timed out: {}", f.message());
            } else {
                eprintln!("finger: lookup failed: {}", f.message());
            }
            Ok(INTERNAL_ERROR.to_owned())
        })
}

/// A finger server listening on loopback. Dropping it stops accepting connections.
///
/// ```
/// use defer_core::{ensure_deferred, tokio::react, TokioScheduler};
/// use defer_examples::finger::{Server, UserDb, query};
/// use std::{rc::Rc, time::Duration};
///
/// let answer = react(|| ensure_deferred(async {
///     let db = UserDb::new(Rc::new(TokioScheduler::new()), Duration::ZERO, Duration::from_secs(5));
///     db.add_user("moshez", "Happy and well", Duration::from_millis(1));
///     let server = Server::start(Rc::new(db))?;
///     Ok(query(server.addr(), "moshez").await?)
/// }));
/// assert_eq!(answer.unwrap(), "Happy and well");
/// ```
pub struct Server {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Server {
    /// Binds `127.0.0.1` on a free port and serves `db`, each connection in a task of the current
    /// `LocalSet` (the Deferreds stay on this thread). Must be called inside a `LocalSet`, as
    /// [`react`](defer_core::tokio::react) provides.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound.
    pub fn start(db: Rc<UserDb>) -> io::Result<Server> {
        Server::start_on("127.0.0.1:0", db)
    }

    /// As [`start`](Server::start), on `addr` (`"127.0.0.1:7979"`, say).
    ///
    /// # Errors
    ///
    /// If `addr` cannot be bound.
    pub fn start_on(addr: &str, db: Rc<UserDb>) -> io::Result<Server> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let accept = spawn_local(async move {
            loop {
                let Ok((stream, _peer)) = listener.accept().await else {
                    continue;
                };
                let db = db.clone();
                spawn_local(async move {
                    if let Err(e) = serve(stream, &db).await {
                        eprintln!("finger: connection failed: {e}");
                    }
                });
            }
        });
        Ok(Server { addr, accept })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One connection: read a line, answer it with [`line_received`]'s Deferred, write the answer and
/// a line end, close. The tutorial's `FingerProtocol` (a `LineReceiver` whose `writeResponse`
/// ends with `transport.loseConnection()`).
///
/// # Errors
///
/// If reading or writing the socket fails, or the line is longer than 1 KiB.
pub async fn serve(stream: TcpStream, db: &UserDb) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(MAX_LINE as u64);
    reader.read_line(&mut line).await?;
    if !line.ends_with('\n') && line.len() >= MAX_LINE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    }
    // The handler's Deferred, awaited: the task sleeps until the lookup answers or times out.
    let answer = line_received(db, &line)
        .await
        .unwrap_or_else(|_| INTERNAL_ERROR.to_owned());
    write.write_all(answer.as_bytes()).await?;
    write.write_all(b"\r\n").await?;
    write.shutdown().await
}

/// A finger client: connects to `addr`, sends `user` and a line end, and returns the answer line
/// (without its line end) once the server closes the connection.
///
/// # Errors
///
/// If connecting, writing or reading fails.
pub async fn query(addr: SocketAddr, user: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("{user}\r\n").as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer.trim_end_matches(['\r', '\n']).to_owned())
}
