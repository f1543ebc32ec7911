//! The control API and its CLI under stress and at the edges: connections
//! that never finish or never leave, usage errors, a start that cannot
//! succeed, follow streams when ward stops, a second `up --detach`.

use crate::harness::*;

#[test]
fn start_fails_naming_a_completed_dependency_that_failed() {
    let ward = Ward::new(
        r#"
[program.migrate]
command = ["{testee}", "--exit", "1"]
restart = "never"

[program.web]
command = ["{testee}"]
depends_on = { migrate = "completed" }
"#,
    )
    .up();
    ward.wait_state("migrate", 0, "exited");
    ward.wait_state("web", 0, "waiting");
    let out = ward.ward(&["start", "web"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start succeeded: {stdout}{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "ward: web:0 waiting: dependency migrate:0 failed (exit 1); \
         it will not start until migrate completes",
        "stdout: {stdout}"
    );
    // The same through the API: the waiting instance names its blocker.
    let web = ward.instance("web", 0);
    assert_eq!(web["state"], "waiting");
    assert_eq!(web["waiting_on"][0]["instance"], "migrate:0", "{web}");
    assert_eq!(web["waiting_on"][0]["condition"], "completed", "{web}");
    assert_eq!(web["waiting_on"][0]["failed"], true, "{web}");
    ward.down();
}
