//! The admin API's users, source networks, enterprise profile and number plan (issue
//! 13) through the built daemon: an operator creates an enterprise admin who creates a
//! viewer of its own enterprise (not of another: 404), changes its password (its other
//! sessions end), removes the viewer (its session and key end at once); an enterprise
//! restricted to 127.0.0.1 refuses its users from 127.0.0.2 (login and requests) but not
//! the operator; an enterprise admin renames its enterprise and changes its alert
//! contacts but not its billing; it switches its number to its other plan and the next
//! call follows it, and cannot move the number to another enterprise.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::{Value, json};
use support::api::{Session, add_user, http, http_from, login_body};
use support::{Caller, Daemon, Phone, free_port};

/// Another loopback address than the API's clients normally come from.
const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// acme (billed at `standard`) with two plans, `main` ringing `main_phone` and `night`
/// ringing `night_phone`, and its number on `main`; beta with a plan of its own.
fn routing(api_port: u16, main_phone: &str, night_phone: &str) -> String {
    format!(
        r#"
[api]
listen = "127.0.0.1:{api_port}"

[[trunk]]
name = "lab"
sources = ["127.0.0.1"]
gateway = "sip:{{number}}@127.0.0.1:{gateway}"

[[tariff]]
name = "standard"
rate_per_minute = "0.30"
increment = 60

[[tariff]]
name = "cheap"
rate_per_minute = "0.01"
increment = 60

[[enterprise]]
id = "acme"
name = "Acme"
alert_contacts = ["13800138000"]

[[enterprise]]
id = "beta"
name = "Beta"
tariff = "standard"
alert_secret = "beta-file-secret-0123456789abcdef"

[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"

[[plan]]
name = "main"
enterprise = "acme"
group = "sales"

[[plan]]
name = "night"
enterprise = "acme"
group = "night-desk"

[[plan]]
name = "beta-main"
enterprise = "beta"
group = "beta-desk"

[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{{ uri = "{main_phone}", capacity = 1 }}]

[[group]]
name = "night-desk"
enterprise = "acme"
strategy = "sequential"
phones = [{{ uri = "{night_phone}", capacity = 1 }}]

[[group]]
name = "beta-desk"
enterprise = "beta"
strategy = "sequential"
phones = [{{ number = "13900000009" }}]
"#,
        gateway = free_port(),
    )
}

struct Api {
    daemon: Daemon,
    addr: SocketAddr,
}

impl Api {
    /// A daemon with phones nobody calls, and its operator `ops`.
    fn start() -> Api {
        Api::start_with(
            "sip:13900000001@127.0.0.1:5999",
            "sip:13900000002@127.0.0.1:5999",
        )
    }

    fn start_with(main_phone: &str, night_phone: &str) -> Api {
        let api_port = free_port();
        let daemon = Daemon::start_with("", &routing(api_port, main_phone, night_phone));
        add_user(&daemon.config_path(), "ops", "operator", None);
        let addr = format!("127.0.0.1:{api_port}").parse().expect("address");
        Api { daemon, addr }
    }

    /// `login` created over the API by `by`, with the password `LOGIN-secret-pw`.
    fn create_user(&self, by: &Session, login: &str, role: &str, enterprise: Option<&str>) {
        let created = by.post("/api/v1/users", &new_user(login, role, enterprise));
        assert_eq!(created.status, 201, "create {login}: {}", created.body);
    }
}

fn new_user(login: &str, role: &str, enterprise: Option<&str>) -> String {
    let mut body =
        json!({ "login": login, "password": format!("{login}-secret-pw"), "role": role });
    if let Some(enterprise) = enterprise {
        body["enterprise"] = json!(enterprise);
    }
    body.to_string()
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn audit_has(audit: &Value, actor: &str, action: &str, target: &str) -> bool {
    audit.as_array().is_some_and(|entries| {
        entries
            .iter()
            .any(|a| a["actor"] == actor && a["action"] == action && a["target"] == target)
    })
}

#[test]
fn an_enterprise_admin_manages_its_own_users_and_password_changes_and_removals_end_sessions() {
    let api = Api::start();
    let addr = api.addr;
    let ops = Session::login(addr, "ops");
    api.create_user(&ops, "acme-boss", "enterprise_admin", Some("acme"));
    api.create_user(&ops, "beta-boss", "enterprise_admin", Some("beta"));
    // The API enforces the command line's password rule.
    let short = ops.post(
        "/api/v1/users",
        r#"{"login":"shorty","password":"short","role":"operator"}"#,
    );
    assert_eq!(short.status, 422, "{}", short.body);
    assert_eq!(short.json()["errors"][0]["field"], "password");

    let boss = Session::login(addr, "acme-boss");
    // A viewer of its own enterprise (the enterprise left out: its own).
    let viewer = boss.post(
        "/api/v1/users",
        &new_user("acme-view", "enterprise_viewer", None),
    );
    assert_eq!(viewer.status, 201, "{}", viewer.body);
    assert_eq!(viewer.json()["enterprise"], "acme");
    assert!(
        !viewer.body.contains("secret-pw") && !viewer.body.contains("argon2"),
        "{}",
        viewer.body
    );
    // Not of another enterprise, whether or not it exists; not an operator.
    for other in ["beta", "nosuch"] {
        let foreign = boss.post(
            "/api/v1/users",
            &new_user("x-view", "enterprise_viewer", Some(other)),
        );
        assert_eq!(foreign.status, 404, "{other}: {}", foreign.body);
    }
    let operator = boss.post("/api/v1/users", &new_user("x-ops", "operator", None));
    assert_eq!(operator.status, 403, "{}", operator.body);
    // It lists and removes its own enterprise's users only.
    let listed = boss.get("/api/v1/users").json();
    let logins: Vec<&str> = listed
        .as_array()
        .map(|users| users.iter().filter_map(|u| u["login"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(logins, ["acme-boss", "acme-view"], "{listed}");
    assert_eq!(boss.delete("/api/v1/users/beta-boss").status, 404);
    assert_eq!(boss.delete("/api/v1/users/ops").status, 404);
    assert_eq!(
        http(addr, "GET", "/api/v1/users", &[], None).status,
        401,
        "no caller, no list"
    );

    // The viewer logs in and makes itself an API key, shown once.
    let view = Session::login(addr, "acme-view");
    assert_eq!(
        view.get("/api/v1/users").status,
        403,
        "a viewer manages no users"
    );
    let made = view.post("/api/v1/users/acme-view/keys", r#"{"name":"crm"}"#);
    assert_eq!(made.status, 201, "{}", made.body);
    let view_key = made.json()["key"].as_str().unwrap_or_default().to_owned();
    let view_key_id = made.json()["id"].as_i64().unwrap_or_default();
    assert_eq!(view_key.len(), 64, "{}", made.body);
    let listed_keys = view.get("/api/v1/users/acme-view/keys");
    assert_eq!(listed_keys.json()[0]["name"], "crm", "{}", listed_keys.body);
    assert!(!listed_keys.body.contains(&view_key), "a key is shown once");
    let by_key = |key: &str| {
        http(
            addr,
            "GET",
            "/api/v1/me",
            &[("Authorization", &bearer(key))],
            None,
        )
    };
    assert_eq!(by_key(&view_key).status, 200);
    // An enterprise admin does not manage its viewer's keys; another enterprise's admin
    // does not even see them.
    assert_eq!(boss.get("/api/v1/users/acme-view/keys").status, 403);
    let beta = Session::login(addr, "beta-boss");
    assert_eq!(beta.get("/api/v1/users/acme-view/keys").status, 404);

    // A password change ends every other session of the user at once.
    let elsewhere = Session::login(addr, "acme-boss");
    assert_eq!(elsewhere.get("/api/v1/me").status, 200);
    let change = |old: &str, new: &str| {
        boss.post(
            "/api/v1/me/password",
            &json!({ "old_password": old, "new_password": new }).to_string(),
        )
    };
    assert_eq!(change("not-the-password", "a-brand-new-pw").status, 403);
    assert_eq!(change("acme-boss-secret-pw", "short").status, 422);
    assert_eq!(
        elsewhere.get("/api/v1/me").status,
        200,
        "refused changes end nothing"
    );
    let changed = change("acme-boss-secret-pw", "a-brand-new-pw");
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_eq!(elsewhere.get("/api/v1/me").status, 401);
    assert_eq!(
        boss.get("/api/v1/me").status,
        200,
        "the session that changed it stays"
    );
    let old = http(
        addr,
        "POST",
        "/api/v1/login",
        &[],
        Some(&login_body("acme-boss", "acme-boss-secret-pw")),
    );
    assert_eq!(old.status, 401);
    Session::login_with(addr, "acme-boss", "a-brand-new-pw");

    // A viewer who forgot its password: its enterprise's admin sets a new one (the
    // viewer's session ends, its key stays); another enterprise's admin cannot.
    let reset = |session: &Session, login: &str, new: &str| {
        session.put(
            &format!("/api/v1/users/{login}/password"),
            &json!({ "new_password": new }).to_string(),
        )
    };
    let view_session = Session::login(addr, "acme-view");
    assert_eq!(reset(&beta, "acme-view", "beta-chose-this").status, 404);
    assert_eq!(reset(&boss, "acme-view", "short").status, 422);
    assert_eq!(reset(&boss, "acme-boss", "myself-again-pw").status, 403);
    let done = reset(&boss, "acme-view", "a-reset-password");
    assert_eq!(done.status, 204, "{}", done.body);
    assert_eq!(view_session.get("/api/v1/me").status, 401);
    assert_eq!(by_key(&view_key).status, 200, "a reset keeps the keys");
    let view = Session::login_with(addr, "acme-view", "a-reset-password");

    // Removing the viewer ends its session and its key at once.
    let removed = boss.delete("/api/v1/users/acme-view");
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(view.get("/api/v1/me").status, 401);
    assert_eq!(by_key(&view_key).status, 401);
    assert_eq!(
        boss.delete("/api/v1/users/acme-boss").status,
        403,
        "not oneself"
    );

    // Its own key, revoked by itself; another, revoked by the operator.
    let own = boss.post("/api/v1/users/acme-boss/keys", r#"{"name":"sync"}"#);
    assert_eq!(own.status, 201, "{}", own.body);
    let (own_id, own_key) = (
        own.json()["id"].as_i64().unwrap_or_default(),
        own.json()["key"].as_str().unwrap_or_default().to_owned(),
    );
    assert_eq!(by_key(&own_key).status, 200);
    assert_eq!(
        boss.delete(&format!("/api/v1/users/acme-boss/keys/{own_id}"))
            .status,
        204
    );
    assert_eq!(by_key(&own_key).status, 401);
    let second = boss.post("/api/v1/users/acme-boss/keys", r#"{"name":"backup"}"#);
    let (second_id, second_key) = (
        second.json()["id"].as_i64().unwrap_or_default(),
        second.json()["key"].as_str().unwrap_or_default().to_owned(),
    );
    assert_eq!(
        beta.delete(&format!("/api/v1/users/acme-boss/keys/{second_id}"))
            .status,
        404
    );
    assert_eq!(by_key(&second_key).status, 200);
    assert_eq!(
        ops.delete(&format!("/api/v1/users/acme-boss/keys/{second_id}"))
            .status,
        204
    );
    assert_eq!(by_key(&second_key).status, 401);

    // All of it audited (who, from where, which user), none of the secrets.
    let audit = ops.get("/api/v1/audit");
    let entries = audit.json();
    assert!(
        audit_has(&entries, "ops", "user.add", "user/acme-boss"),
        "{entries}"
    );
    assert!(audit_has(
        &entries,
        "acme-boss",
        "user.add",
        "user/acme-view"
    ));
    assert!(audit_has(
        &entries,
        "acme-view",
        "key.add",
        &format!("key/acme-view/{view_key_id}")
    ));
    assert!(audit_has(
        &entries,
        "acme-boss",
        "user.password",
        "user/acme-boss"
    ));
    assert!(audit_has(
        &entries,
        "acme-boss",
        "user.remove",
        "user/acme-view"
    ));
    assert!(audit_has(
        &entries,
        "ops",
        "key.revoke",
        &format!("key/acme-boss/{second_id}")
    ));
    let user_changes: Vec<&Value> = entries
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|e| {
                    e["action"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("user.") || a.starts_with("key."))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(user_changes.len(), 11, "{entries}");
    assert!(audit_has(
        &entries,
        "acme-boss",
        "user.password_reset",
        "user/acme-view"
    ));
    assert!(
        user_changes.iter().all(|e| e["source"] == "127.0.0.1"),
        "{entries}"
    );
    // An enterprise admin reads its own enterprise's user history; beta none of it.
    let beta_audit = beta.get("/api/v1/audit").json();
    assert!(!audit_has(
        &beta_audit,
        "acme-boss",
        "user.add",
        "user/acme-view"
    ));
    let log = api.daemon.stop();
    for secret in [
        "secret-pw",
        "a-brand-new-pw",
        "argon2",
        &view_key,
        &own_key,
        &second_key,
    ] {
        assert!(!audit.body.contains(secret), "{secret} in the audit");
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn a_source_network_restriction_refuses_the_enterprises_users_from_elsewhere_not_the_operator() {
    let api = Api::start();
    let addr = api.addr;
    let config = api.daemon.config_path();
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));
    let key = support::api::api_key(&config, "acme-admin");
    let ops = Session::login(addr, "ops");
    let admin = Session::login(addr, "acme-admin");
    let me = |from: IpAddr, headers: &[(&str, &str)]| {
        http_from(from, addr, "GET", "/api/v1/me", headers, None).status
    };
    let login = |from: IpAddr, login: &str, password: &str| {
        http_from(
            from,
            addr,
            "POST",
            "/api/v1/login",
            &[],
            Some(&login_body(login, password)),
        )
    };
    // Unrestricted: anywhere.
    assert_eq!(me(ELSEWHERE, &[("Authorization", &bearer(&key))]), 200);

    // Only the operator restricts an enterprise.
    let restrict = json!({ "api_sources": ["127.0.0.1"] }).to_string();
    let refused = admin.put("/api/v1/enterprises/acme", &restrict);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["errors"][0]["field"], "api_sources");
    let invalid = ops.put(
        "/api/v1/enterprises/acme",
        r#"{"name":"Acme","api_sources":["127.0.0.1/8"]}"#,
    );
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert_eq!(invalid.json()["errors"][0]["entry"], "enterprise/acme");
    assert_eq!(invalid.json()["errors"][0]["field"], "api_sources[0]");
    let put = ops.put(
        "/api/v1/enterprises/acme",
        r#"{"name":"Acme","alert_contacts":["13800138000"],"api_sources":["127.0.0.1"]}"#,
    );
    assert_eq!(put.status, 200, "{}", put.body);

    // From elsewhere: the right password fails as a wrong one does, and a live
    // session or key is refused.
    let right = login(ELSEWHERE, "acme-admin", "acme-admin-secret-pw");
    let wrong = login(ELSEWHERE, "acme-admin", "not-the-password");
    assert_eq!((right.status, wrong.status), (401, 401));
    assert_eq!(
        right.body, wrong.body,
        "nothing tells the password was right"
    );
    assert!(right.header("set-cookie").is_none());
    let cookie = [("Cookie", admin.cookie.as_str())];
    assert_eq!(me(ELSEWHERE, &cookie), 403);
    assert_eq!(me(ELSEWHERE, &[("Authorization", &bearer(&key))]), 403);
    // From inside: as before.
    assert_eq!(
        login(HERE, "acme-admin", "acme-admin-secret-pw").status,
        200
    );
    assert_eq!(me(HERE, &cookie), 200);
    assert_eq!(me(HERE, &[("Authorization", &bearer(&key))]), 200);
    // Another enterprise and the operator are not restricted by it.
    assert_eq!(
        login(ELSEWHERE, "beta-admin", "beta-admin-secret-pw").status,
        200
    );
    let ops_elsewhere = login(ELSEWHERE, "ops", "ops-secret-pw");
    assert_eq!(ops_elsewhere.status, 200, "{}", ops_elsewhere.body);
    assert_eq!(me(ELSEWHERE, &[("Cookie", ops.cookie.as_str())]), 200);

    // Lifting the restriction lets the admin in from anywhere again, at once.
    let lifted = ops.put(
        "/api/v1/enterprises/acme",
        r#"{"name":"Acme","alert_contacts":["13800138000"]}"#,
    );
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    assert_eq!(me(ELSEWHERE, &cookie), 200);
    api.daemon.stop();
}

#[test]
fn an_enterprise_admin_changes_its_profile_but_not_its_billing() {
    let api = Api::start();
    let addr = api.addr;
    let config = api.daemon.config_path();
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));
    add_user(&config, "beta-view", "enterprise_viewer", Some("beta"));
    let ops = Session::login(addr, "ops");
    let beta = Session::login(addr, "beta-admin");

    let ids = |session: &Session| -> Vec<String> {
        session
            .get("/api/v1/enterprises")
            .json()
            .as_array()
            .map_or(Vec::new(), |all| {
                all.iter()
                    .filter_map(|e| e["key"].as_str().map(str::to_owned))
                    .collect()
            })
    };
    assert_eq!(ids(&ops), ["acme", "beta"]);
    assert_eq!(ids(&beta), ["beta"]);
    assert_eq!(beta.get("/api/v1/enterprises/acme").status, 404);
    let read = beta.get("/api/v1/enterprises/beta");
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["data"]["tariff"], "standard");
    let revision = read.json()["revision"].as_i64().unwrap_or_default();

    // Its profile: the name and alert contacts (the tariff left out is kept).
    let profile = r#"{"name":"Beta Logistics","alert_contacts":["13800138001","13800138002"]}"#;
    let put = beta.put("/api/v1/enterprises/beta", profile);
    assert_eq!(put.status, 200, "{}", put.body);
    let now = beta.get("/api/v1/enterprises/beta").json();
    assert_eq!(now["data"]["name"], "Beta Logistics", "{now}");
    assert_eq!(
        now["data"]["alert_contacts"],
        json!(["13800138001", "13800138002"])
    );
    assert_eq!(now["data"]["tariff"], "standard", "kept: {now}");
    assert!(now["revision"].as_i64() > Some(revision));
    // Repeating the billing unchanged is fine (a read, edited, written back).
    let mut round_trip = now["data"].clone();
    round_trip["name"] = json!("Beta Logistics Ltd");
    let put = beta.put("/api/v1/enterprises/beta", &round_trip.to_string());
    assert_eq!(put.status, 200, "{}", put.body);
    // Its billing is the operator's: refused naming the field, nothing applied.
    for (field, body) in [
        ("tariff", r#"{"name":"Beta","tariff":"cheap"}"#),
        (
            "billing",
            r#"{"name":"Beta","billing":{"min_balance":"0"}}"#,
        ),
        (
            "recording_retention_days",
            r#"{"name":"Beta","recording_retention_days":1}"#,
        ),
    ] {
        let refused = beta.put("/api/v1/enterprises/beta", body);
        assert_eq!(refused.status, 403, "{field}: {}", refused.body);
        assert_eq!(
            refused.json()["errors"][0]["field"],
            field,
            "{}",
            refused.body
        );
        assert_eq!(refused.json()["errors"][0]["entry"], "enterprise/beta");
    }
    let after = beta.get("/api/v1/enterprises/beta").json();
    assert_eq!(after["data"]["tariff"], "standard");
    assert_eq!(after["data"]["name"], "Beta Logistics Ltd");
    // A bad contact is the validator's 422, at its field.
    let bad = beta.put(
        "/api/v1/enterprises/beta",
        r#"{"name":"Beta","alert_contacts":["12"]}"#,
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["errors"][0]["field"], "alert_contacts[0]");
    // A viewer reads it and writes nothing.
    let view = Session::login(addr, "beta-view");
    assert_eq!(view.get("/api/v1/enterprises/beta").status, 200);
    assert_eq!(view.put("/api/v1/enterprises/beta", profile).status, 403);

    // The webhook signing secret is write-only: no read shows it, nor the audit (the
    // file's seed, the profile writes above), to the enterprise's viewer or anyone; a
    // write that leaves it out kept it, a new one replaces it, "" removes it.
    let exported = |needle: &str| {
        let out = std::process::Command::new(support::SIHAI)
            .args(["export", "--enterprise", "beta", "-c"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .output()
            .expect("run sihai export");
        String::from_utf8_lossy(&out.stdout).contains(needle)
    };
    let read = view.get("/api/v1/enterprises/beta").json();
    assert!(read["data"].get("alert_secret").is_none(), "{read}");
    assert_eq!(read["hidden"], json!(["alert_secret"]), "{read}");
    assert!(
        exported("beta-file-secret-0123456789abcdef"),
        "kept by the writes above"
    );
    let replaced = beta.put(
        "/api/v1/enterprises/beta",
        r#"{"name":"Beta Logistics Ltd","alert_secret":"beta-new-secret-0123456789abcdef"}"#,
    );
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert!(
        !replaced.body.contains("beta-new-secret"),
        "{}",
        replaced.body
    );
    assert!(exported("beta-new-secret-0123456789abcdef"));
    for session in [&view, &beta] {
        let audit = session.get("/api/v1/audit");
        assert_eq!(audit.status, 200);
        assert!(
            !audit.body.contains("beta-file-secret") && !audit.body.contains("beta-new-secret"),
            "{}",
            audit.body
        );
        assert!(audit.body.contains("(hidden)"), "{}", audit.body);
    }
    let removed = beta.put(
        "/api/v1/enterprises/beta",
        r#"{"name":"Beta Logistics Ltd","alert_secret":""}"#,
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.json()["hidden"], json!([]), "{}", removed.body);
    assert!(!exported("alert_secret"));
    // The operator changes the tariff, and creates an enterprise.
    let cheap = ops.put(
        "/api/v1/enterprises/beta",
        r#"{"name":"Beta Logistics Ltd","tariff":"cheap"}"#,
    );
    assert_eq!(cheap.status, 200, "{}", cheap.body);
    let created = ops.put("/api/v1/enterprises/gamma", r#"{"name":"Gamma"}"#);
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(ids(&ops), ["acme", "beta", "gamma"]);
    // An enterprise admin creates none.
    assert_eq!(
        beta.put("/api/v1/enterprises/delta", r#"{"name":"D"}"#)
            .status,
        404
    );

    // Audited: who, the entry, before and after.
    let audit = beta.get("/api/v1/audit").json();
    let renamed = audit
        .as_array()
        .and_then(|all| {
            all.iter().find(|a| {
                a["actor"] == "beta-admin"
                    && a["target"] == "enterprise/beta"
                    && a["after"]
                        .as_str()
                        .is_some_and(|t| t.contains("Beta Logistics\""))
            })
        })
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(renamed["source"], "127.0.0.1", "{audit}");
    assert!(
        renamed["before"]
            .as_str()
            .is_some_and(|t| t.contains("name = \"Beta\""))
    );
    assert!(
        renamed["after"]
            .as_str()
            .is_some_and(|t| t.contains("13800138002"))
    );
    api.daemon.stop();
}

#[test]
fn an_enterprise_admin_switches_its_number_to_its_other_plan_and_the_next_call_follows() {
    let mut day = Phone::start("uas_answer.xml", 1, 0);
    let mut night = Phone::start("uas_answer.xml", 1, 0);
    let api = Api::start_with(&day.uri("13900000001"), &night.uri("13900000002"));
    let addr = api.addr;
    add_user(
        &api.daemon.config_path(),
        "acme-admin",
        "enterprise_admin",
        Some("acme"),
    );
    Caller::new(&api.daemon, "uac_answered.xml").run();
    day.finish(&api.daemon);

    let admin = Session::login(addr, "acme-admin");
    let number = "/api/v1/enterprises/acme/numbers/4001234567";
    let read = admin.get(number);
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["data"]["plan"], "main");
    // Not another enterprise's plan: the validator's 422.
    let foreign = admin.put(number, r#"{"plan":"beta-main"}"#);
    assert_eq!(foreign.status, 422, "{}", foreign.body);
    let put = admin.put(number, r#"{"plan":"night"}"#);
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json()["data"]["status"], "active", "kept: {}", put.body);
    api.daemon.wait_tenant_reloaded(1);
    // The very next call rings the night plan's phone.
    Caller::new(&api.daemon, "uac_answered.xml").run();
    night.finish(&api.daemon);

    // Nothing else of the number is its admin's: not its enterprise, status or limits,
    // not a new number, not a removal.
    let moved = admin.put(number, r#"{"plan":"night","enterprise":"beta"}"#);
    assert_eq!(moved.status, 422, "{}", moved.body);
    assert_eq!(moved.json()["errors"][0]["field"], "enterprise");
    assert_eq!(
        admin
            .put(
                "/api/v1/enterprises/beta/numbers/4001234567",
                r#"{"plan":"beta-main"}"#
            )
            .status,
        404
    );
    let suspended = admin.put(number, r#"{"plan":"night","status":"suspended"}"#);
    assert_eq!(suspended.status, 403, "{}", suspended.body);
    assert_eq!(suspended.json()["errors"][0]["field"], "status");
    let limited = admin.put(number, r#"{"plan":"night","max_concurrent":1}"#);
    assert_eq!(limited.status, 403, "{}", limited.body);
    assert_eq!(limited.json()["errors"][0]["field"], "max_concurrent");
    let new = admin.put(
        "/api/v1/enterprises/acme/numbers/4007654321",
        r#"{"plan":"main","status":"active"}"#,
    );
    assert_eq!(new.status, 403, "{}", new.body);
    assert_eq!(admin.delete(number).status, 403);
    let kept = admin.get(number).json();
    assert_eq!(kept["data"]["plan"], "night");
    assert_eq!(kept["data"]["enterprise"], "acme");
    assert_eq!(kept["data"]["status"], "active");

    // The operator assigns a number.
    let ops = Session::login(addr, "ops");
    let assigned = ops.put(
        "/api/v1/enterprises/acme/numbers/4007654321",
        r#"{"plan":"main","status":"active"}"#,
    );
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    let audit = admin.get("/api/v1/audit").json();
    assert!(
        audit_has(&audit, "acme-admin", "put", "number/4001234567"),
        "{audit}"
    );
    assert!(
        audit_has(&audit, "ops", "put", "number/4007654321"),
        "{audit}"
    );
    api.daemon.stop();
}
