//! tests/README.md lists every configurable behaviour and the end-to-end test that drives
//! it. This keeps the table true: every `file::function` it names must be a test in that
//! file, so a renamed or deleted test cannot leave the table pointing at nothing.

use std::path::Path;

#[test]
fn every_test_the_table_names_exists() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let table = std::fs::read_to_string(dir.join("README.md")).expect("read tests/README.md");
    let mut named = 0;
    let mut missing = Vec::new();
    for line in table.lines().filter(|l| l.starts_with('|')) {
        let Some(tests) = line.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        for reference in tests.split(';').map(str::trim) {
            let Some((file, function)) = reference.split_once("::") else {
                continue;
            };
            named += 1;
            let Ok(source) = std::fs::read_to_string(dir.join(format!("{file}.rs"))) else {
                missing.push(format!("{reference}: no tests/{file}.rs"));
                continue;
            };
            if function == "*" {
                continue;
            }
            let test = format!("#[test]\nfn {function}()");
            if !source.contains(&test) {
                missing.push(format!(
                    "{reference}: no #[test] fn {function} in tests/{file}.rs"
                ));
            }
        }
    }
    assert!(
        named > 50,
        "only {named} tests named: is the table still there?"
    );
    assert!(
        missing.is_empty(),
        "tests/README.md names tests that do not exist:\n{}",
        missing.join("\n")
    );
}
