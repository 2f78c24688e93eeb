// Pins: `yield_!` works inside `loop`, `while`, `for`, `match`, `if let`, as
// a statement, nested in its own argument, inside other macros' input
// (`println!`, `vec!`, `assert_eq!`), written with a path, and with locals
// borrowed across it; and a body that waits on a pending Deferred resumes
// when it fires.
#![deny(warnings)]
use defer_core::testing::{assert_no_result, success_result_of};
use defer_core::{Deferred, inline_callbacks, succeed, yield_};

#[inline_callbacks]
fn sum(ds: Vec<Deferred<u32>>) -> Deferred<u32> {
    let mut total = 0;
    for d in ds {
        total += yield_!(d)?;
    }
    Ok(total)
}

#[inline_callbacks]
fn control_flow(n: u32) -> Deferred<String> {
    let mut log = String::new();
    let mut i = 0;
    loop {
        i += 1;
        match yield_!(succeed(i))? {
            1 => continue,
            x if x > n => break,
            _ => {}
        }
        while yield_!(succeed(log.len()))? < i as usize {
            log.push('.');
        }
    }
    if let Ok(v) = yield_!(succeed(7u32)) {
        log.push_str(&v.to_string());
    }
    yield_!(succeed(()))?;
    let nested = yield_!(succeed(yield_!(succeed(3u32))? + 1))?;
    let borrowed = &log;
    let len = yield_!(succeed(borrowed.len()))?;
    let v = vec![yield_!(succeed(1u8))?, defer_core::yield_!(succeed(2u8))?];
    let w = vec![yield_!(succeed(0u8))?; 2];
    assert_eq!(yield_!(succeed(5u8))?, 5);
    println!("{} {} {:?} {:?}", nested, len, v, w);
    Ok(format!("{log}|{nested}|{len}"))
}

#[inline_callbacks]
fn wait(d: Deferred<u32>) -> Deferred<u32> {
    let v = yield_!(d)?;
    Ok(v + 1)
}

fn main() {
    assert_eq!(
        success_result_of(sum(vec![succeed(1), succeed(2), succeed(3)])),
        6
    );
    assert_eq!(success_result_of(control_flow(3)), "...7|4|4");
    let (d, trigger) = Deferred::new();
    let out = wait(d);
    assert_no_result(&out);
    trigger.callback(41);
    assert_eq!(success_result_of(out), 42);
}
