//! Scenarios on a simulated clock: one behaviour each, end to end through
//! the public API.

#[path = "../common/mod.rs"]
mod common;

mod reload;
mod requests;
mod restarts;
mod shutdown;
mod start;
mod stop;

use ward_core::*;

fn done_states(reply: Option<Result<Reply, RequestError>>) -> Vec<(String, State)> {
    match reply {
        Some(Ok(Reply::Done { instances })) => instances
            .into_iter()
            .map(|v| (v.id.to_string(), v.state))
            .collect(),
        other => panic!("expected Done, got {other:?}"),
    }
}
