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
    ] {
        assert!(
            examples.contains(command),
            "no example of `{command}`: {help}"
        );
    }
}
