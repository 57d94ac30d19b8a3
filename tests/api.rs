//! The admin API (issue 13, first part) through the built daemon: an enterprise admin
//! logs in, replaces the bound phone of its group, and the very next sipp call rings the
//! new phone; a write without the CSRF token, an invalid write (422 naming the entry and
//! field) and a viewer's write are refused; another enterprise's admin gets 404 for all
//! of it; every write is audited (the file's seed too, under the file's name); failed logins are throttled; logout ends the session.

mod support;

use std::net::SocketAddr;

use support::api::{Session, add_user, api_key, http};
use support::{Caller, Daemon, Phone, free_port};

fn routing(api_port: u16, phone_uri: &str) -> String {
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

[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"

[[plan]]
name = "main"
enterprise = "acme"
group = "sales"

[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{{ uri = "{phone_uri}", capacity = 1 }}]

[[group]]
name = "beta-desk"
enterprise = "beta"
strategy = "sequential"
phones = [{{ number = "13900000009" }}]
"#,
        gateway = free_port(),
    )
}

#[test]
fn an_enterprise_admin_replaces_its_bound_phone_and_the_next_call_rings_it() {
    let mut old = Phone::start("uas_answer.xml", 1, 0);
    let mut new = Phone::start("uas_answer.xml", 1, 0);
    let (old_uri, new_uri) = (old.uri("13900000001"), new.uri("13900000002"));
    let api_port = free_port();
    let daemon = Daemon::start_with("", &routing(api_port, &old_uri));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    add_user(&config, "acme-viewer", "enterprise_viewer", Some("acme"));
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));

    Caller::new(&daemon, "uac_answered.xml").run();
    old.finish(&daemon);

    let acme = Session::login(addr, "acme-admin");
    assert_eq!(acme.get("/api/v1/me").json()["enterprise"], "acme");
    let sales = "/api/v1/enterprises/acme/groups/sales";
    let read = acme.get(sales);
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["data"]["phones"][0]["uri"], old_uri.as_str());
    let revision = read.json()["revision"].as_i64().expect("a revision");

    let replaced =
        format!(r#"{{"strategy":"sequential","phones":[{{"uri":"{new_uri}","capacity":1}}]}}"#);
    // Without the CSRF token a cookie cannot write.
    let no_csrf = http(
        addr,
        "PUT",
        sales,
        &[("Cookie", &acme.cookie)],
        Some(&replaced),
    );
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    // An invalid write names the entry and the field, and applies nothing.
    let invalid = acme.put(
        sales,
        r#"{"strategy":"sideways","phones":[{"number":"13900000003"}]}"#,
    );
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    let problem = &invalid.json()["errors"][0];
    assert_eq!(problem["entry"], "group/sales", "{}", invalid.body);
    assert_eq!(problem["field"], "strategy", "{}", invalid.body);
    // A viewer reads but does not write.
    let viewer = Session::login(addr, "acme-viewer");
    assert_eq!(viewer.get(sales).status, 200);
    assert_eq!(viewer.put(sales, &replaced).status, 403);

    let put = acme.put(sales, &replaced);
    assert_eq!(put.status, 200, "{}", put.body);
    assert!(
        put.json()["revision"].as_i64() > Some(revision),
        "{}",
        put.body
    );
    daemon.wait_tenant_reloaded(1);
    // The very next call rings the new phone (the old one has exited).
    Caller::new(&daemon, "uac_answered.xml").run();
    new.finish(&daemon);

    // Another enterprise's admin sees none of it, as if it did not exist.
    let beta = Session::login(addr, "beta-admin");
    for path in [
        sales,
        "/api/v1/enterprises/acme/groups",
        "/api/v1/enterprises/acme/numbers",
    ] {
        assert_eq!(beta.get(path).status, 404, "{path}");
    }
    assert_eq!(beta.put(sales, &replaced).status, 404);
    assert_eq!(beta.get("/api/v1/enterprises/beta/groups").status, 200);

    // The write is audited: who, from where, before and after; beta sees none of it.
    let audit = acme.get("/api/v1/audit").json();
    let entry = &audit[0];
    assert_eq!(entry["actor"], "acme-admin", "{audit}");
    assert_eq!(entry["target"], "group/sales");
    assert_eq!(entry["source"], "127.0.0.1");
    assert!(
        entry["before"]
            .as_str()
            .is_some_and(|b| b.contains(&old_uri))
    );
    assert!(
        entry["after"]
            .as_str()
            .is_some_and(|a| a.contains(&new_uri))
    );
    let beta_audit = beta.get("/api/v1/audit").json();
    let beta_entries = beta_audit.as_array().cloned().unwrap_or_default();
    assert!(
        !beta_entries.is_empty()
            && beta_entries
                .iter()
                .all(|a| a["enterprise"] == "beta" && a["actor"] != "acme-admin"),
        "beta sees its own history (seeded from the file) and nothing of acme's: {beta_audit}"
    );

    // Logout ends the session at once.
    let out = http(
        addr,
        "POST",
        "/api/v1/logout",
        &[("Cookie", &acme.cookie), ("X-CSRF-Token", &acme.csrf)],
        None,
    );
    assert_eq!(out.status, 204, "{}", out.body);
    assert_eq!(acme.get("/api/v1/me").status, 401);
    daemon.stop();
}

#[test]
fn failed_logins_are_throttled_per_account_and_source() {
    let api_port = free_port();
    let daemon = Daemon::start_with("", &routing(api_port, "sip:13900000001@127.0.0.1:5999"));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    let wrong = r#"{"login":"acme-admin","password":"not-the-password"}"#;
    for attempt in 1..=5 {
        let reply = http(addr, "POST", "/api/v1/login", &[], Some(wrong));
        assert_eq!(reply.status, 401, "attempt {attempt}: {}", reply.body);
    }
    // The sixth try is not even checked, the right password included.
    let right = r#"{"login":"acme-admin","password":"acme-admin-secret-pw"}"#;
    let throttled = http(addr, "POST", "/api/v1/login", &[], Some(right));
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    assert!(throttled.header("retry-after").is_some());
    assert!(
        !daemon.plain_log().contains("not-the-password"),
        "no password ever reaches the log"
    );
    daemon.stop();
}

#[test]
fn a_foreign_key_gets_404_on_every_route_of_the_openapi_document() {
    let api_port = free_port();
    let daemon = Daemon::start_with("", &routing(api_port, "sip:13900000001@127.0.0.1:5999"));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));
    let acme_key = api_key(&config, "acme-admin");
    let beta_key = api_key(&config, "beta-admin");
    let bearer = |key: &str| format!("Bearer {key}");

    let document = http(addr, "GET", "/api/v1/openapi.json", &[], None);
    assert_eq!(document.status, 200);
    let document = document.json();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{document}"
    );
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    for expected in [
        "/api/v1/login",
        "/api/v1/logout",
        "/api/v1/me",
        "/api/v1/audit",
        "/api/v1/openapi.json",
        "/api/v1/enterprises/{enterprise}/{collection}",
        "/api/v1/enterprises/{enterprise}/{collection}/{key}",
        "/api/v1/enterprises",
        "/api/v1/enterprises/{enterprise}",
        "/api/v1/users",
        "/api/v1/users/{login}",
        "/api/v1/users/{login}/keys",
        "/api/v1/users/{login}/keys/{id}",
        "/api/v1/users/{login}/password",
        "/api/v1/me/password",
        "/api/v1/enterprises/{enterprise}/cdrs/{call_id}/recording",
        "/api/v1/enterprises/{enterprise}/recharges",
        "/api/v1/enterprises/{enterprise}/adjustments",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} is documented: {:?}",
            paths.keys()
        );
    }

    // Every route about an enterprise or one of its users, with every method the
    // document gives it, asked by beta's key about acme's data: 404, never 403 or 200.
    let body = r#"{"strategy":"sequential","phones":[{"number":"13900000001"}]}"#;
    let mut walked = 0;
    for (template, item) in &paths {
        if !template.contains("{enterprise}") && !template.contains("{login}") {
            continue;
        }
        let path = template
            .replace("{enterprise}", "acme")
            .replace("{collection}", "groups")
            .replace("{key}", "sales")
            .replace("{call_id}", "some-call")
            .replace("{login}", "acme-admin")
            // acme's key, the store's first.
            .replace("{id}", "1");
        for method in item
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let method = method.to_uppercase();
            let with_body = matches!(method.as_str(), "PUT" | "POST" | "PATCH").then_some(body);
            let foreign = http(
                addr,
                &method,
                &path,
                &[("Authorization", &bearer(&beta_key))],
                with_body,
            );
            assert_eq!(
                foreign.status, 404,
                "{method} {path} with beta's key: {}",
                foreign.body
            );
            walked += 1;
        }
    }
    assert!(walked >= 11, "the walk covered {walked} routes");
    // The same route answers acme's own key: the 404s above are the isolation, not a
    // broken route.
    let own = http(
        addr,
        "GET",
        "/api/v1/enterprises/acme/groups/sales",
        &[("Authorization", &bearer(&acme_key))],
        None,
    );
    assert_eq!(own.status, 200, "{}", own.body);
    // A key writes without a CSRF token (there is no cookie to forge).
    let put = http(
        addr,
        "PUT",
        "/api/v1/enterprises/acme/groups/sales",
        &[("Authorization", &bearer(&acme_key)), ("If-Match", "\"1\"")],
        Some(body),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    // The same If-Match again is stale now.
    let stale = http(
        addr,
        "PUT",
        "/api/v1/enterprises/acme/groups/sales",
        &[("Authorization", &bearer(&acme_key)), ("If-Match", "\"1\"")],
        Some(r#"{"strategy":"random","phones":[{"number":"13900000001"}]}"#),
    );
    assert_eq!(stale.status, 409, "{}", stale.body);
    daemon.stop();
}

#[test]
fn a_caller_blacklisted_through_the_api_is_declined_on_the_next_call() {
    let api_port = free_port();
    let daemon = Daemon::start_with("", &routing(api_port, "sip:13900000001@127.0.0.1:5999"));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    let key = format!("Bearer {}", api_key(&config, "acme-admin"));
    let plan = "/api/v1/enterprises/acme/plans/main";
    let read = http(addr, "GET", plan, &[("Authorization", &key)], None);
    assert_eq!(read.status, 200, "{}", read.body);
    let mut data = read.json()["data"].clone();
    // The support's callers dial from 13800138000.
    data["blacklist"] = serde_json::json!(["13800138000"]);
    let put = http(
        addr,
        "PUT",
        plan,
        &[("Authorization", &key)],
        Some(&data.to_string()),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    daemon.wait_tenant_reloaded(1);
    Caller::refused(&daemon, 603).run();
    daemon.stop();
}
