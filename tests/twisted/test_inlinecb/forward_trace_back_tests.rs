//! Ports of Twisted's `test_inlinecb.py` `ForwardTraceBackTests`.
