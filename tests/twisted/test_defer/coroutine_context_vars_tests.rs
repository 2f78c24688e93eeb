//! Ports of Twisted's `test_defer.py` `CoroutineContextVarsTests`.
