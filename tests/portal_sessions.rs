//! The web portal served by the built daemon, in headless Chromium: logging in (a wrong
//! password refused at the form), the operator's list of enterprises and one's backend,
//! an enterprise admin confined to its own dashboard (another enterprise's pages and the
//! operator's redirect home), a reload keeping the session, a revoked session returning
//! the page to the login (which says so), the language switch. The page's files are the
//! binary's own (one binary), served with their cache and security headers.

mod support;

use std::net::SocketAddr;

use support::api::{Session, add_user, get_bytes};
use support::portal::BrowserTest;
use support::{Daemon, free_port};

fn routing(api_port: u16) -> String {
    format!(
        r#"
[api]
listen = "127.0.0.1:{api_port}"

[[trunk]]
name = "lab"
sources = ["127.0.0.1"]
gateway = "sip:{{number}}@127.0.0.1:{gateway}"

[[enterprise]]
id = "acme"
name = "Acme"

[[enterprise]]
id = "beta"
name = "Beta"
"#,
        gateway = free_port(),
    )
}

#[test]
fn the_portal_logs_in_confines_each_enterprise_and_returns_to_the_login_when_the_session_ends() {
    let api_port = free_port();
    let daemon = Daemon::start_with("", &routing(api_port));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "op", "operator", None);
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));

    // The page and its files, from the binary.
    let page = get_bytes(addr, "/", &[]);
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.body.clone()).expect("UTF-8");
    assert!(html.contains("<div id=\"app\">"), "{html}");
    assert_eq!(page.header("cache-control").as_deref(), Some("no-cache"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("frame-ancestors 'none'"))
    );
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's script");
    let plain = get_bytes(addr, script, &[]);
    assert_eq!(plain.status, 200, "{script}");
    assert_eq!(
        plain.header("cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    let zipped = get_bytes(addr, script, &[("Accept-Encoding", "gzip, br")]);
    assert_eq!(zipped.header("content-encoding").as_deref(), Some("gzip"));
    assert!(
        zipped.body.len() < plain.body.len() / 2,
        "gzip {} of {}",
        zipped.body.len(),
        plain.body.len()
    );
    assert_eq!(get_bytes(addr, "/assets/none.js", &[]).status, 404);
    assert_eq!(get_bytes(addr, "/api/v1/none", &[]).status, 404);

    let mut browser = BrowserTest::start("sessions.mjs", addr, &[]);
    browser.wait_step("revoke beta-admin");
    let operator = Session::login(addr, "op");
    let reset = operator.put(
        "/api/v1/users/beta-admin/password",
        r#"{"new_password":"another-secret-pw"}"#,
    );
    assert_eq!(reset.status, 204, "{}", reset.body);
    browser.go("revoked");
    browser.finish();
    drop(daemon);
}
