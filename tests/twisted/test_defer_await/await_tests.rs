//! Ports of Twisted's `test_defer_await.py` `AwaitTests`.
