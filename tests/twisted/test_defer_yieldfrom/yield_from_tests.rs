//! Ports of Twisted's `test_defer_yieldfrom.py` `YieldFromTests`.
