//! Ports of Twisted's `test_threads.py` `ReactorThreadsTests`.
