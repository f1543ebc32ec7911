//! Integration tests: the real `ward` binary against real child processes
//! (the `testee` program). One harness, one test binary.

mod harness;

mod cli;
mod control;
mod faults;
mod lifecycle;
mod logs;
mod reload;
mod signals;
mod trees;
