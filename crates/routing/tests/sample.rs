//! The routing snapshot of the shipped sample configuration: menus compiled into the
//! walker's trees, extensions and groups findable by what a menu hands back.

use std::path::Path;

use sihai_config::Config;
use sihai_routing::RoutingTable;

fn sample() -> RoutingTable {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/sihai.toml");
    let config = Config::load(&path).unwrap_or_else(|errors| panic!("{errors}"));
    RoutingTable::compile(&config)
}

#[test]
fn a_plan_with_a_menu_carries_its_compiled_tree() {
    let table = sample();
    let with_menu: Vec<_> = table
        .numbers
        .values()
        .filter_map(|n| n.plan.menu.as_ref().map(|m| (n, m)))
        .collect();
    assert!(!with_menu.is_empty(), "the sample has a switchboard number");
    for (number, menu) in with_menu {
        // Every group a menu can choose is the number's enterprise's own.
        for node in menu.nodes() {
            for (_, action) in &node.options {
                if let sihai_ivr::MenuAction::Group(group) = action {
                    assert!(
                        table.group(&number.enterprise.id, group).is_some(),
                        "{group} of {}",
                        number.enterprise.id
                    );
                }
            }
        }
    }
}

#[test]
fn extensions_are_found_by_enterprise_and_number() {
    let table = sample();
    let desk = table.extension("acme", "8001").expect("acme's 8001");
    assert_eq!(desk.group.name, "acme-front-desk");
    assert_eq!(desk.ringback.as_deref(), Some("please-hold"));
    assert!(table.extension("acme", "9999").is_none());
    assert!(table.extension("other", "8001").is_none());
}
