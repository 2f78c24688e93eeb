//! Ports of Twisted's `test_task.py` `ClockTests`.
