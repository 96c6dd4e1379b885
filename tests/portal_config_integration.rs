//! `nginx -t` on the portal configs of `tests/portal_config.rs` (integration tier: needs nginx):
//! the snippet profile is accepted, and the negative canary — the quote trick the server-block
//! count was written against, planted past the plan — passes `nginx -t` and fails the count.

#[path = "portal_config/checks.rs"]
mod checks;
mod common;

use checks::{plan_of, server_problems, snippets};
use infragen::plan::{Component, Plan};
use infragen::render;
use infragen::tree::Tree;
use infragen::validate::{self, Outcome};

/// The nginx checker's verdict on `plan` rendered into `tree`.
fn nginx_t(plan: &Plan, tree: &Tree) -> Outcome {
    let report = validate::tree(plan, tree).unwrap();
    report
        .checks
        .iter()
        .find(|c| c.component == Component::Nginx)
        .expect("nginx is checked")
        .outcome
        .clone()
}

#[test]
fn nginx_accepts_every_accepted_config() {
    common::tier::binary(
        common::tier::Tier::Integration,
        "tests/portal_config_integration.rs",
    );
    let plan = plan_of(&snippets());
    let tree = render::plan(&plan).unwrap();
    assert_eq!(nginx_t(&plan, &tree), Outcome::Accepted);
}

/// What the old brace count let through: a quoted `{` balances the `}` that closes the server
/// block, and a quoted `server` opens another one serving `/` of the host. Planted past the plan,
/// `nginx -t` accepts it (it checks syntax, not intent); the count above refuses it.
#[test]
fn negative_canary_an_escaped_server_block_passes_nginx_and_fails_the_count() {
    common::tier::binary(
        common::tier::Tier::Integration,
        "tests/portal_config_integration.rs",
    );
    let mut plan = plan_of("single-node");
    let h = &mut plan.hosts[0];
    let p = h
        .nginx
        .as_mut()
        .unwrap()
        .portal
        .iter_mut()
        .find(|p| p.name == "home")
        .expect("single-node has a home entry");
    p.config = Some(
        "add_header X \"{\"; }\n\"server\" { listen 127.0.0.1:8081; location / { root /; autoindex on; }"
            .to_owned(),
    );
    let tree = render::plan(&plan).unwrap();
    assert_eq!(nginx_t(&plan, &tree), Outcome::Accepted);
    let problems = server_problems(&plan, &tree);
    assert!(
        problems.iter().any(|m| m.contains("server blocks for")),
        "{problems:?}"
    );
}
