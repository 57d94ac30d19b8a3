//! The enterprise's configuration pages of the web portal (its own backend, 独立后台),
//! driven in headless Chromium against the built daemon: an enterprise admin changes the
//! first bound phone of its group in the page and the next sipp call rings the new phone,
//! not the old one; a phone the validator refuses shows the API's message at that
//! phone's field; a holiday picked on the calendar, a blacklist entry, a menu key, an
//! extension and an uploaded WAV prompt are saved (and read back here through the API);
//! the menu is drawn as a tree; a viewer sees the pages without anything that writes.

mod support;

use std::net::SocketAddr;

use support::api::{Session, add_user};
use support::portal::BrowserTest;
use support::{Caller, Daemon, Phone, free_port};

fn routing(api_port: u16, phone_uri: &str) -> String {
    format!(
        r##"
[api]
listen = "127.0.0.1:{api_port}"

[[trunk]]
name = "lab"
sources = ["127.0.0.1"]
gateway = "sip:{{number}}@127.0.0.1:{gateway}"

[[enterprise]]
id = "acme"
name = "上海某某科技有限公司"

[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"

[[plan]]
name = "main"
enterprise = "acme"
group = "sales"
blacklist = ["13900000000", "170*"]

[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{{ uri = "{phone_uri}" }}, {{ number = "13900000002", ring_timeout_s = 30 }}]

[[group]]
name = "repairs"
enterprise = "acme"
strategy = "simultaneous"
phones = [{{ number = "13900000061" }}]

[[schedule]]
name = "acme-hours"
enterprise = "acme"
monday = ["09:00-18:00"]
tuesday = ["09:00-12:00", "13:00-18:00"]
holidays = ["2026-10-01"]

[[plan]]
name = "support"
enterprise = "acme"
group = "sales"
menu = "acme-menu"
schedule = "acme-hours"
blacklist = ["13900000000"]

[[prompt]]
name = "acme-main-menu"
enterprise = "acme"
file = "menu.wav"

[[prompt]]
name = "dial-extension"
file = "dial-extension.wav"

[[menu]]
name = "acme-menu"
enterprise = "acme"
root = "main"

[[menu.node]]
name = "main"
prompt = "acme-main-menu"
default = {{ group = "sales" }}

[menu.node.options]
"1" = {{ group = "sales" }}
"2" = {{ menu = "service" }}
"0" = {{ extension = {{ prompt = "dial-extension", max_digits = 4 }} }}
"#" = "hangup"

[[menu.node]]
name = "service"
prompt = "acme-main-menu"
default = "previous"

[menu.node.options]
"1" = {{ group = "repairs" }}
"*" = "previous"

[[extension]]
enterprise = "acme"
number = "8001"
group = "repairs"
"##,
        gateway = free_port(),
    )
}

#[test]
fn an_enterprise_admin_configures_its_numbers_in_the_portal_and_the_next_call_follows() {
    let old = Phone::start("uas_answer.xml", 1, 0);
    let mut new = Phone::start("uas_answer.xml", 1, 0);
    let (old_uri, new_uri) = (old.uri("13900000001"), new.uri("13900000008"));
    let api_port = free_port();
    let daemon = Daemon::start_with("", &routing(api_port, &old_uri));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    add_user(&config, "acme-viewer", "enterprise_viewer", Some("acme"));

    let mut browser =
        BrowserTest::start("config.mjs", addr, &[("SIHAI_NEW_PHONE", new_uri.clone())]);

    // The page saved the group: the new phone in place of the old, the added one moved up
    // to second, the last one disabled.
    browser.wait_step("call the number");
    let acme = Session::login(addr, "acme-admin");
    let sales = acme.get("/api/v1/enterprises/acme/groups/sales").json();
    let phones = &sales["data"]["phones"];
    assert_eq!(phones[0]["uri"], new_uri.as_str(), "{sales}");
    assert_eq!(phones[1]["number"], "13900000007", "{sales}");
    assert_eq!(phones[1]["ring_timeout_s"], 15, "{sales}");
    assert_eq!(phones[2]["number"], "13900000002", "{sales}");
    assert_eq!(phones[2]["enabled"], false, "{sales}");
    assert!(!sales.to_string().contains(&old_uri), "{sales}");
    daemon.wait_tenant_reloaded(1);
    Caller::new(&daemon, "uac_answered.xml").run();
    new.finish(&daemon);
    assert!(
        !old.messages().contains("INVITE"),
        "the old phone was not rung:\n{}",
        old.messages()
    );
    drop(old);
    browser.go("called");
    browser.finish();

    // What the pages saved, read back through the API.
    let read = |path: &str| {
        let reply = acme.get(&format!("/api/v1/enterprises/acme/{path}"));
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.json()["data"].clone()
    };
    let hours = read("schedules/acme-hours");
    let holidays = hours["holidays"].as_array().expect("holidays");
    assert_eq!(holidays.len(), 2, "{hours}");
    assert_eq!(holidays[0], "2026-10-01", "{hours}");
    assert!(
        holidays[1].as_str().is_some_and(|d| d.ends_with("-20")),
        "{hours}"
    );
    assert_eq!(
        read("plans/main")["blacklist"],
        serde_json::json!(["13900000000", "170*", "13812345678"])
    );
    let menu = read("menus/acme-menu");
    assert_eq!(menu["node"][1]["options"]["2"]["group"], "sales", "{menu}");
    assert_eq!(
        menu["node"][1]["options"]["1"]["group"], "repairs",
        "{menu}"
    );
    assert_eq!(read("extensions/8003")["group"], "sales");
    let hold = read("prompts/acme-hold");
    assert!(
        hold["audio"]
            .as_str()
            .is_some_and(|a| a.starts_with("sha256:")),
        "{hold}"
    );
    drop(daemon);
}
