#![cfg(unix)]
//! Integration tests: the real `ward` binary against real child processes
//! (the `testee` program). One harness, one test binary.

mod harness;

mod cli;
mod config_errors;
mod control;
mod edges;
mod exit_codes;
mod faults;
mod files;
mod hardening_proc;
mod lifecycle;
mod logs;
mod lookup;
mod reload;
mod schema;
mod service;
mod signals;
mod stop_modes;
mod trees;
mod why;
