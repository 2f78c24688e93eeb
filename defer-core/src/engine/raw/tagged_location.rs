//! [`TaggedLocation`]: a `&'static Location` and two flags in one word (issue 11: the future of
//! every `.await` and `yield_!` a suspended coroutine sits at is two words, not four).
//!
//! Invariant: `ptr` is a `&'static Location<'static>` with the flags in its two low bits, which
//! a `Location`'s alignment (at least 4, asserted) leaves at zero.

use std::panic::Location;

/// A `&'static Location` and two flags, in one word.
#[derive(Clone, Copy)]
pub(crate) struct TaggedLocation {
    /// The reference's address with the flags or-ed in (a pointer, not an integer: it keeps its
    /// provenance).
    ptr: *const Location<'static>,
}

// SAFETY: it is a `&'static Location` (which is `Send` and `Sync`) and two bits. Written out so
// that a `DeferredFuture` sent to another thread is refused for the chain it holds, as every
// other handle is, and not also for this pointer (`ui-tests`' `deferred_in_tokio_spawn`).
unsafe impl Send for TaggedLocation {}
// SAFETY: as for `Send`.
unsafe impl Sync for TaggedLocation {}

const FLAGS: usize = 0b11;
const _: () = assert!(align_of::<Location<'static>>() > FLAGS);

impl TaggedLocation {
    /// `at`, with both flags clear.
    #[inline(always)]
    pub(crate) fn new(at: &'static Location<'static>) -> Self {
        TaggedLocation { ptr: at }
    }

    #[inline(always)]
    pub(crate) fn location(self) -> &'static Location<'static> {
        // SAFETY: the invariant: without its flags, `ptr` is a `&'static Location`.
        unsafe { &*self.ptr.map_addr(|a| a & !FLAGS) }
    }

    /// Flag `n` (0 or 1).
    #[inline(always)]
    pub(crate) fn flag(self, n: u32) -> bool {
        debug_assert!(n < 2);
        self.ptr.addr() & (1 << n) != 0
    }

    /// Sets flag `n` (0 or 1) to `on`.
    #[inline(always)]
    pub(crate) fn set_flag(&mut self, n: u32, on: bool) {
        debug_assert!(n < 2);
        let bit = 1 << n;
        self.ptr = self.ptr.map_addr(|a| if on { a | bit } else { a & !bit });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_leave_the_location_whole() {
        let at = Location::caller();
        let mut t = TaggedLocation::new(at);
        assert!(!t.flag(0) && !t.flag(1));
        t.set_flag(1, true);
        assert!(!t.flag(0) && t.flag(1));
        t.set_flag(0, true);
        assert_eq!(t.location(), at);
        assert_eq!(t.location().line(), at.line());
        t.set_flag(1, false);
        assert!(t.flag(0) && !t.flag(1));
        assert!(std::ptr::eq(t.location(), at));
    }
}
