//! The command line as a newcomer meets it: `quire --help` says what quire is and shows each
//! command with an example.

use tokio::process::Command;

#[tokio::test]
async fn help_says_what_quire_is_and_shows_every_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_quire"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.starts_with("quire: a blog platform in one binary."),
        "{help}"
    );
    let examples = &help[help.find("Examples:").expect("an Examples section")..];
    for command in [
        "quire serve",
        "quire migrate",
        "quire copy",
        "quire media copy",
        "quire backup",
        "quire restore",
        "quire export",
        "quire import",
        "quire user",
        "quire check",
        "--json",
    ] {
        assert!(
            examples.contains(command),
            "no example of `{command}`: {help}"
        );
    }
}

#[tokio::test]
async fn every_operator_command_explains_itself() {
    for command in [
        &["backup"][..],
        &["restore"],
        &["export"],
        &["import"],
        &["user", "delete"],
        &["check"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_quire"))
            .args(command)
            .arg("--help")
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{command:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("--json"), "{command:?}: {help}");
        assert!(
            help.lines().next().unwrap_or_default().len() > 30,
            "{command:?}: {help}"
        );
    }
    // A command line that cannot work exits 2.
    let output = Command::new(env!("CARGO_BIN_EXE_quire"))
        .args(["backup"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
