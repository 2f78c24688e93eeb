//! Every pattern of the seed, as a synchronous program and as its Deferred translation.
//!
//! Each pattern's two versions log the same lines and end with the same outcome, for an input
//! that succeeds and one that fails: [`Pattern::agrees`] checks it. In the Deferred versions, an
//! asynchronous operation returns a pending Deferred that the [`Network`] answers later, after the
//! whole chain has been built, so nothing happens "in the order of the lines".

use std::cell::RefCell;
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::rc::Rc;

use defer_core::{Deferred, Failure, ensure_deferred, inline_callbacks, yield_};

/// Whether the asynchronous operations of a run succeed or fail.
///
/// ```
/// use defer_examples::seed::{Input, Log, Network};
/// let net = Network::new(Input::Fails, Log::default());
/// let d = net.f().add_errback(|f| { assert_eq!(f.message(), "connection refused"); Ok(0) });
/// net.deliver();
/// assert_eq!(defer_core::testing::success_result_of(d), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Every operation succeeds.
    Succeeds,
    /// The first operation fails with [`ConnectionError`].
    Fails,
}

/// The error the seed's examples handle.
///
/// ```
/// assert_eq!(defer_examples::seed::ConnectionError.to_string(), "connection refused");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionError;

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection refused")
    }
}
impl Error for ConnectionError {}

/// What one run did: the lines it logged, in order, and how it ended.
///
/// ```
/// use defer_examples::seed::{patterns, Input};
/// let run = patterns()[0].agrees(Input::Succeeds).unwrap();
/// assert_eq!(run.outcome, "Ok(())");
/// assert_eq!(run.log.last().unwrap(), "pod.launch()");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The side effects, in the order they happened.
    pub log: Vec<String>,
    /// `Ok(value)` or `Err(message)`.
    pub outcome: String,
}

/// A shared log the steps write to.
///
/// ```
/// let log = defer_examples::seed::Log::default();
/// log.say("hello");
/// ```
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    /// Appends a line.
    ///
    /// ```
    /// defer_examples::seed::Log::default().say("a line");
    /// ```
    pub fn say(&self, line: impl Into<String>) {
        self.0.borrow_mut().push(line.into());
    }
    fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// The pretend network: asynchronous operations return pending Deferreds, answered in order by
/// [`Network::deliver`] once the caller has built its chain.
///
/// ```
/// use defer_examples::seed::{Input, Log, Network};
/// use defer_core::testing::{assert_no_result, success_result_of};
/// let net = Network::new(Input::Succeeds, Log::default());
/// let names = net.get_names();
/// assert_no_result(&names);
/// net.deliver();
/// assert_eq!(success_result_of(names).len(), 3);
/// ```
pub struct Network {
    input: Input,
    log: Log,
    calls: std::cell::Cell<usize>,
    queue: RefCell<VecDeque<Box<dyn FnOnce()>>>,
}

impl Network {
    /// A network whose first operation succeeds or fails as `input` says.
    ///
    /// ```
    /// let net = defer_examples::seed::Network::new(defer_examples::seed::Input::Succeeds, Default::default());
    /// net.deliver(); // nothing outstanding
    /// ```
    pub fn new(input: Input, log: Log) -> Rc<Network> {
        Rc::new(Network {
            input,
            log,
            calls: std::cell::Cell::new(0),
            queue: RefCell::new(VecDeque::new()),
        })
    }

    fn answer<T: 'static>(&self, what: &str, value: T) -> Deferred<T> {
        let (d, trigger) = Deferred::new();
        let fails = self.input == Input::Fails && self.calls.get() == 0;
        self.calls.set(self.calls.get() + 1);
        let log = self.log.clone();
        let what = what.to_owned();
        self.queue.borrow_mut().push_back(Box::new(move || {
            if fails {
                log.say(format!("network: {what} failed"));
                trigger.errback(ConnectionError);
            } else {
                log.say(format!("network: {what} answered"));
                trigger.callback(value);
            }
        }));
        d
    }

    /// Answers every outstanding operation, including those started while answering.
    ///
    /// ```
    /// use defer_examples::seed::{Input, Network};
    /// let net = Network::new(Input::Succeeds, Default::default());
    /// let d = net.f();
    /// net.deliver();
    /// assert_eq!(defer_core::testing::success_result_of(d), 20);
    /// ```
    pub fn deliver(&self) {
        loop {
            let next = self.queue.borrow_mut().pop_front();
            match next {
                Some(answer) => answer(),
                None => return,
            }
        }
    }

    /// `pod_bay_doors.open()`.
    ///
    /// ```
    /// use defer_examples::seed::{Input, Network};
    /// let net = Network::new(Input::Fails, Default::default());
    /// let d = net.open_doors();
    /// net.deliver();
    /// assert!(defer_core::testing::failure_result_of(d).check::<defer_examples::seed::ConnectionError>());
    /// ```
    pub fn open_doors(&self) -> Deferred<()> {
        self.answer("pod_bay_doors.open()", ())
    }

    /// `x.get_names()`.
    ///
    /// ```
    /// use defer_examples::seed::{Input, Network};
    /// let net = Network::new(Input::Succeeds, Default::default());
    /// let d = net.get_names();
    /// net.deliver();
    /// assert_eq!(defer_core::testing::success_result_of(d), ["moon", "earth", "mars"]);
    /// ```
    pub fn get_names(&self) -> Deferred<Vec<String>> {
        self.answer(
            "x.get_names()",
            vec!["moon".to_owned(), "earth".to_owned(), "mars".to_owned()],
        )
    }

    /// `f()` of the generic examples.
    ///
    /// ```
    /// use defer_examples::seed::{Input, Network};
    /// let net = Network::new(Input::Succeeds, Default::default());
    /// let d = net.f();
    /// net.deliver();
    /// assert_eq!(defer_core::testing::success_result_of(d), 20);
    /// ```
    pub fn f(&self) -> Deferred<i32> {
        self.answer("f()", 20)
    }

    /// `makeRequest("GET", "/users")`.
    ///
    /// ```
    /// use defer_examples::seed::{Input, Network};
    /// let net = Network::new(Input::Succeeds, Default::default());
    /// let d = net.make_request("GET", "/users");
    /// net.deliver();
    /// assert_eq!(defer_core::testing::success_result_of(d), r#"["ada", "grace"]"#);
    /// ```
    pub fn make_request(&self, method: &str, path: &str) -> Deferred<String> {
        self.answer(
            &format!("makeRequest({method:?}, {path:?})"),
            r#"["ada", "grace"]"#.to_owned(),
        )
    }
}

/// The synchronous counterparts of the network's operations.
struct Sync {
    input: Input,
    log: Log,
    calls: std::cell::Cell<usize>,
}

impl Sync {
    fn op<T>(&self, what: &str, value: T) -> Result<T, ConnectionError> {
        let first = self.calls.get() == 0;
        self.calls.set(self.calls.get() + 1);
        if first && self.input == Input::Fails {
            self.log.say(format!("network: {what} failed"));
            Err(ConnectionError)
        } else {
            self.log.say(format!("network: {what} answered"));
            Ok(value)
        }
    }
    fn open_doors(&self) -> Result<(), ConnectionError> {
        self.op("pod_bay_doors.open()", ())
    }
    fn get_names(&self) -> Result<Vec<String>, ConnectionError> {
        self.op(
            "x.get_names()",
            vec!["moon".to_owned(), "earth".to_owned(), "mars".to_owned()],
        )
    }
    fn f(&self) -> Result<i32, ConnectionError> {
        self.op("f()", 20)
    }
    fn make_request(&self, method: &str, path: &str) -> Result<String, ConnectionError> {
        self.op(
            &format!("makeRequest({method:?}, {path:?})"),
            r#"["ada", "grace"]"#.to_owned(),
        )
    }
}

fn show<T: fmt::Debug, E: fmt::Display>(r: Result<T, E>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({e})"),
    }
}

fn show_failure<T: fmt::Debug>(r: Result<T, Failure>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(f) => format!("Err({})", f.message()),
    }
}

/// Reads a Deferred's result after the network has delivered everything.
fn settle<T: fmt::Debug + 'static>(d: Deferred<T>, net: &Network, log: &Log) -> Run {
    let out: Rc<RefCell<Option<String>>> = Rc::default();
    let o = out.clone();
    let _done = d.add_both(move |r| {
        *o.borrow_mut() = Some(show_failure(r));
        Ok(())
    });
    net.deliver();
    let outcome = out
        .borrow_mut()
        .take()
        .unwrap_or_else(|| "no result".to_owned());
    Run {
        log: log.lines(),
        outcome,
    }
}

fn sync_run<T: fmt::Debug, E: fmt::Display>(
    input: Input,
    body: impl FnOnce(&Sync, &Log) -> Result<T, E>,
) -> Run {
    let log = Log::default();
    let sync = Sync {
        input,
        log: log.clone(),
        calls: std::cell::Cell::new(0),
    };
    let r = body(&sync, &log);
    Run {
        log: log.lines(),
        outcome: show(r),
    }
}

fn deferred_run<T: fmt::Debug + 'static>(
    input: Input,
    body: impl FnOnce(&Rc<Network>, &Log) -> Deferred<T>,
) -> Run {
    let log = Log::default();
    let net = Network::new(input, log.clone());
    let d = body(&net, &log);
    settle(d, &net, &log)
}

/// One pattern of the seed.
///
/// ```
/// let p = &defer_examples::seed::patterns()[2];
/// assert_eq!(p.title, "Simple failure handling");
/// assert!(p.python.contains("addErrback(report_error)"));
/// ```
pub struct Pattern {
    /// The seed's section title.
    pub title: &'static str,
    /// The seed's Python, synchronous then with Deferreds.
    pub python: &'static str,
    /// The synchronous Rust, as [`sync`](Pattern::sync) runs it (taken from this crate's source).
    pub sync_rust: String,
    /// The Deferred Rust, as [`deferred`](Pattern::deferred) runs it (taken from this crate's
    /// source).
    pub deferred_rust: String,
    /// The synchronous Rust program.
    pub sync: fn(Input) -> Run,
    /// The Deferred version.
    pub deferred: fn(Input) -> Run,
}

impl Pattern {
    /// Runs both versions on `input`; `Ok` with the common run when they agree.
    ///
    /// ```
    /// use defer_examples::seed::{patterns, Input};
    /// for p in patterns() {
    ///     assert!(p.agrees(Input::Fails).is_ok(), "{}", p.title);
    /// }
    /// ```
    pub fn agrees(&self, input: Input) -> Result<Run, (Run, Run)> {
        let a = (self.sync)(input);
        let b = (self.deferred)(input);
        if a == b { Ok(a) } else { Err((a, b)) }
    }
}

fn report_error(log: &Log, e: &dyn fmt::Display) {
    log.say(format!("report_error({e})"));
}

/// `g(e)`: handles an error and returns a replacement value.
fn g(log: &Log, e: &dyn fmt::Display) -> i32 {
    log.say(format!("g({e})"));
    -1
}

/// `h(y)`.
fn h(log: &Log, y: i32) -> i32 {
    log.say(format!("h({y})"));
    y + 1
}

// The inline-callbacks and coroutine versions of getUsers, as the seed writes them. The code
// between `// tour:begin NAME` and `// tour:end NAME` is what the tour prints (see `snippet`).

// tour:begin get_users_inline
#[inline_callbacks]
fn get_users_inline(net: Rc<Network>, log: Log) -> Deferred<Vec<String>> {
    let response_body = match yield_!(net.make_request("GET", "/users")) {
        Ok(body) => body,
        Err(f) => {
            f.trap::<ConnectionError>()?;
            log.say("makeRequest failed due to connection error");
            return Ok(vec![]);
        }
    };
    Ok(serde_json::from_str(&response_body)?)
}
// tour:end get_users_inline

// tour:begin get_users_async
async fn get_users_async(net: Rc<Network>, log: Log) -> Result<Vec<String>, Failure> {
    match net.make_request("GET", "/users").await {
        Ok(body) => Ok(serde_json::from_str(&body)?),
        Err(f) => {
            f.trap::<ConnectionError>()?;
            log.say("makeRequest failed due to connection error");
            Ok(vec![])
        }
    }
}
// tour:end get_users_async

// tour:begin get_users_sync
fn get_users_sync(x: &Sync, log: &Log) -> Result<Vec<String>, Box<dyn Error>> {
    match x.make_request("GET", "/users") {
        Ok(body) => Ok(serde_json::from_str(&body)?),
        Err(ConnectionError) => {
            log.say("makeRequest failed due to connection error");
            Ok(vec![])
        }
    }
}
// tour:end get_users_sync

/// This file's source, from which the tour takes the Rust it prints: the code shown is the code
/// that runs.
const SOURCE: &str = include_str!("seed.rs");

/// The lines of this file between `// tour:begin NAME` and `// tour:end NAME`, with their common
/// indentation removed; several names are joined with a blank line.
///
/// ```
/// let code = defer_examples::seed::snippet(&["get_users_sync"]);
/// assert!(code.starts_with("fn get_users_sync("));
/// ```
///
/// # Panics
///
/// If a name has no region (a test runs every pattern's names).
pub fn snippet(names: &[&str]) -> String {
    let regions: Vec<String> = names
        .iter()
        .map(|name| {
            let begin = format!("// tour:begin {name}");
            let end = format!("// tour:end {name}");
            let lines: Vec<&str> = SOURCE
                .lines()
                .skip_while(|l| l.trim() != begin)
                .skip(1)
                .take_while(|l| l.trim() != end)
                .collect();
            assert!(
                !lines.is_empty(),
                "no `tour:begin {name}` region in seed.rs"
            );
            let indent = lines
                .iter()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start().len())
                .min()
                .unwrap_or(0);
            lines
                .iter()
                .map(|l| l.get(indent..).unwrap_or("").trim_end())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    regions.join("\n\n")
}

/// All the seed's patterns, in the seed's order.
///
/// ```
/// assert_eq!(defer_examples::seed::patterns().len(), 10);
/// ```
pub fn patterns() -> Vec<Pattern> {
    vec![
        Pattern {
            title: "The joy of order: the pod bay doors",
            python: "pod_bay_doors.open()\npod.launch()\n\nd = pod_bay_doors.open()\nd.addCallback(lambda ignored: pod.launch())",
            sync_rust: snippet(&["doors.sync"]),
            deferred_rust: snippet(&["doors.deferred"]),
            sync: |input| {
                sync_run(input, |x, log| {
                    // tour:begin doors.sync
                    x.open_doors()?;
                    log.say("pod.launch()");
                    Ok::<_, ConnectionError>(())
                    // tour:end doors.sync
                })
            },
            deferred: |input| {
                deferred_run(input, |net, log| {
                    // tour:begin doors.deferred
                    let log = log.clone();
                    let d = net.open_doors();
                    d.add_callback(move |_ignored| {
                        log.say("pod.launch()");
                        Ok(())
                    })
                    // tour:end doors.deferred
                })
            },
        },
        Pattern {
            title: "One thing, then another, then another",
            python: "pprint(sorted(x.get_names()))\n\nx.get_names().addCallback(sorted).addCallback(pprint)",
            sync_rust: snippet(&["sorted.sync"]),
            deferred_rust: snippet(&["sorted.deferred"]),
            sync: |input| {
                sync_run(input, |x, log| {
                    // tour:begin sorted.sync
                    let names = x.get_names()?;
                    let mut sorted_names = names;
                    sorted_names.sort();
                    log.say(format!("pprint({sorted_names:?})"));
                    Ok::<_, ConnectionError>(())
                    // tour:end sorted.sync
                })
            },
            deferred: |input| {
                deferred_run(input, |net, log| {
                    // tour:begin sorted.deferred
                    let log = log.clone();
                    net.get_names()
                        .add_callback(|mut names| {
                            names.sort();
                            Ok(names)
                        })
                        .add_callback(move |sorted_names| {
                            log.say(format!("pprint({sorted_names:?})"));
                            Ok(())
                        })
                    // tour:end sorted.deferred
                })
            },
        },
        Pattern {
            title: "Simple failure handling",
            python: "try:\n    x.get_names()\nexcept Exception as e:\n    report_error(e)\n\nd = x.get_names()\nd.addErrback(report_error)",
            sync_rust: snippet(&["report.sync"]),
            deferred_rust: snippet(&["report.deferred"]),
            sync: |input| {
                sync_run(input, |x, log| {
                    // tour:begin report.sync
                    let _ = x.get_names().map_err(|e| report_error(log, &e));
                    Ok::<_, ConnectionError>(())
                    // tour:end report.sync
                })
            },
            deferred: |input| {
                deferred_run(input, |net, log| {
                    // tour:begin report.deferred
                    let log = log.clone();
                    // report_error returns nothing, so the chain carries on with no value.
                    net.get_names()
                        .add_callback(|_names| Ok(()))
                        .add_errback(move |f| {
                            report_error(&log, &f.message());
                            Ok(())
                        })
                    // tour:end report.deferred
                })
            },
        },
        Pattern {
            title: "Handle an error, but do something else on success",
            python: "try:\n    y = f()\nexcept Exception as e:\n    g(e)\nelse:\n    h(y)\n\nd = f()\nd.addCallbacks(h, g)",
            sync_rust: snippet(&["else.sync"]),
            deferred_rust: snippet(&["else.deferred"]),
            sync: |input| {
                sync_run(input, |x, log| {
                    // tour:begin else.sync
                    let r = match x.f() {
                        Err(e) => g(log, &e),
                        Ok(y) => h(log, y),
                    };
                    Ok::<_, ConnectionError>(r)
                    // tour:end else.sync
                })
            },
            deferred: |input| {
                deferred_run(input, |net, log| {
                    // tour:begin else.deferred
                    let (l1, l2) = (log.clone(), log.clone());
                    net.f()
                        .add_callbacks(move |y| Ok(h(&l1, y)), move |e| Ok(g(&l2, &e.message())))
                    // tour:end else.deferred
                })
            },
        },
        Pattern {
            title: "Handle an error, then proceed anyway",
            python: "try:\n    y = f()\nexcept Exception as e:\n    y = g(e)\nh(y)\n\nf().addErrback(g).addCallback(h)",
            sync_rust: snippet(&["proceed.sync"]),
            deferred_rust: snippet(&["proceed.deferred"]),
            sync: |input| {
                sync_run(input, |x, log| {
                    // tour:begin proceed.sync
                    let y = match x.f() {
                        Ok(y) => y,
                        Err(e) => g(log, &e),
                    };
                    Ok::<_, ConnectionError>(h(log, y))
                    // tour:end proceed.sync
                })
            },
            deferred: |input| {
                deferred_run(input, |net, log| {
                    // tour:begin proceed.deferred
                    let (l1, l2) = (log.clone(), log.clone());
                    net.f()
                        .add_errback(move |e| Ok(g(&l1, &e.message())))
                        .add_callback(move |y| Ok(h(&l2, y)))
                    // tour:end proceed.deferred
                })
            },
        },
        Pattern {
            title: "Handle an error for the entire operation",
            python: "try:\n    y = f()\n    z = h(y)\nexcept Exception as e:\n    g(e)\n\nd = f().addCallback(h).addErrback(g)",
            sync_rust: snippet(&["entire.sync"]),
            deferred_rust: snippet(&["entire.deferred"]),
            sync: |input| {
                sync_run(input, |x, log| {
                    // tour:begin entire.sync
                    let r = (|| -> Result<i32, ConnectionError> {
                        let y = x.f()?;
                        Ok(h(log, y))
                    })();
                    Ok::<_, ConnectionError>(r.unwrap_or_else(|e| g(log, &e)))
                    // tour:end entire.sync
                })
            },
            deferred: |input| {
                deferred_run(input, |net, log| {
                    // tour:begin entire.deferred
                    let (l1, l2) = (log.clone(), log.clone());
                    net.f()
                        .add_callback(move |y| Ok(h(&l1, y)))
                        .add_errback(move |e| Ok(g(&l2, &e.message())))
                    // tour:end entire.deferred
                })
            },
        },
        Pattern {
            title: "Do something regardless",
            python: "try:\n    y = f()\nfinally:\n    g()\n\nd = f()\nd.addBoth(g)",
            sync_rust: snippet(&["finally.sync"]),
            deferred_rust: snippet(&["finally.deferred"]),
            sync: |input| {
                sync_run(input, |x, log| {
                    // tour:begin finally.sync
                    let y = x.f();
                    log.say("g()");
                    y
                    // tour:end finally.sync
                })
            },
            deferred: |input| {
                deferred_run(input, |net, log| {
                    // tour:begin finally.deferred
                    let log = log.clone();
                    net.f().add_both(move |result| {
                        log.say("g()");
                        result // a `finally` re-raises: the failure passes on
                    })
                    // tour:end finally.deferred
                })
            },
        },
        Pattern {
            title: "Inline callbacks: using yield_!",
            python: "@inlineCallbacks\ndef getUsers(self):\n    try:\n        responseBody = yield makeRequest(\"GET\", \"/users\")\n    except ConnectionError:\n        log.failure(\"makeRequest failed due to connection error\")\n        returnValue([])\n    returnValue(json.loads(responseBody))",
            sync_rust: snippet(&["get_users_sync"]),
            deferred_rust: snippet(&["get_users_inline"]),
            sync: |input| sync_run(input, get_users_sync),
            deferred: |input| {
                deferred_run(input, |net, log| get_users_inline(net.clone(), log.clone()))
            },
        },
        Pattern {
            title: "Coroutines with async/await",
            python: "async def getUsers():\n    try:\n        return json.loads(await makeRequest(\"GET\", \"/users\"))\n    except ConnectionError:\n        log.failure(\"makeRequest failed due to connection error\")\n        return []\n\nd = ensureDeferred(getUsers())",
            sync_rust: snippet(&["get_users_sync"]),
            deferred_rust: snippet(&["get_users_async", "coroutine.deferred"]),
            sync: |input| sync_run(input, get_users_sync),
            deferred: |input| {
                deferred_run(input, |net, log| {
                    // tour:begin coroutine.deferred
                    ensure_deferred(get_users_async(net.clone(), log.clone()))
                    // tour:end coroutine.deferred
                })
            },
        },
        Pattern {
            title: "Mixing the styles",
            python: "async def bar():\n    baz = await someOtherDeferredFunction()\n    fooResult = await foo()\n    return baz + fooResult\n\nensureDeferred(bar())",
            sync_rust: snippet(&["mixing.sync"]),
            deferred_rust: snippet(&["mixing.deferred"]),
            sync: |input| {
                sync_run(input, |x, log| {
                    // tour:begin mixing.sync
                    let users = get_users_sync(x, log)?;
                    let names = x.get_names()?;
                    Ok::<_, Box<dyn Error>>(users.len() + names.len())
                    // tour:end mixing.sync
                })
            },
            deferred: |input| {
                deferred_run(input, |net, log| {
                    // tour:begin mixing.deferred
                    let (net, log) = (net.clone(), log.clone());
                    // An async coroutine awaiting an #[inline_callbacks] function and a plain chain.
                    ensure_deferred(async move {
                        let users = get_users_inline(net.clone(), log.clone()).await?;
                        let names = net.get_names().add_callback(|n| Ok(n.len())).await?;
                        Ok(users.len() + names)
                    })
                    // tour:end mixing.deferred
                })
            },
        },
    ]
}
