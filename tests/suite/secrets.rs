//! Secrets in the config never reach the terminal: `config check` and start-up errors mask them.

use crate::util::usagebill;

const SECRET: &str = "hunter2-secret";

fn check(config: &str) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("config.toml"), config).unwrap();
    let output = usagebill(data.path()).args(["config", "check"]).output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

#[test]
fn config_check_never_prints_a_secret() {
    let (ok, printed) = check(&format!("[kafka.properties]\n\"sasl.password\" = \"{SECRET}\"\n"));
    assert!(ok && !printed.contains(SECRET), "{printed}");
    // A mistake on the secret's own line: TOML quotes the line (and here the value) in its error.
    for config in [
        format!("[kafka.properties]\n\"sasl.password\" = {SECRET}\n"),
        "[kafka.properties]\n\"ssl.key.password\" = 20242025\n".to_owned(),
        // In a one-line inline table, beside a value that is fine.
        format!("[kafka]\nproperties = {{ \"sasl.username\" = \"me\", \"sasl.password\" = {SECRET} }}\n"),
    ] {
        let (ok, printed) = check(&config);
        assert!(!ok, "{printed}");
        assert!(!printed.contains(SECRET) && !printed.contains("20242025"), "{printed}");
        assert!(printed.contains(".password") && printed.contains(usagebill::kafka::secret::MASK), "still says where: {printed}");
    }
}

#[test]
fn a_start_up_error_never_prints_a_secret() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("config.toml"), format!("[kafka.properties]\n\"sasl.password\" = {SECRET}\n")).unwrap();
    let output = usagebill(data.path()).arg("report").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("sasl.password") && !stderr.contains(SECRET), "{stderr}");
}
