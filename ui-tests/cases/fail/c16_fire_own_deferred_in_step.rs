// C16: a step cannot fire the Deferred it is attached to. Twisted's step calls d.callback(2)
// while d runs and gets AlreadyCalledError; here the step must own the Trigger to fire it, and
// then nothing else can fire the Deferred to start the chain: the Trigger was moved into the step.
use defer_core::Deferred;

fn main() {
    let (d, trigger) = Deferred::<i32>::new();
    let _d = d.add_callback(move |x| {
        trigger.callback(2);
        Ok(x)
    });
    trigger.callback(1);
}
