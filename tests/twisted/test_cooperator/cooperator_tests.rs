//! Ports of Twisted's `test_cooperator.py` `CooperatorTests`.
