//! A portal entry's `config` stays inside its server block (docs/portal-config.md).
//!
//! For every profile of the corpus — the built-in profiles, the Pigsty fixtures, and
//! `tests/portal-config.yml`, which carries every kind of accepted snippet — the rendered nginx
//! configuration, read with nginx's lexical rules, holds exactly the server blocks the portal
//! defines: one per entry, plus its HTTP redirect server when HTTPS is enforced; server blocks
//! only at the top of `conf.d` files; each entry's `config` as the last directives of its own
//! server block. `nginx -t` on the snippet profile, and the negative canary (the quote trick this
//! check was written against, planted past the plan, passes `nginx -t` and fails the count), are
//! in `tests/portal_config_integration.rs`.

#[path = "portal_config/checks.rs"]
mod checks;
mod common;

use checks::{corpus, plan_of, server_problems};
use infragen::render;

#[test]
fn every_accepted_config_renders_exactly_the_portal_server_blocks() {
    let mut configs = 0;
    for name in corpus() {
        let plan = plan_of(&name);
        let tree = render::plan(&plan).unwrap();
        let problems = server_problems(&plan, &tree);
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
        configs += plan
            .hosts
            .iter()
            .filter_map(|h| h.nginx.as_ref())
            .flat_map(|n| &n.portal)
            .filter(|p| p.config.is_some())
            .count();
    }
    // the snippet profile's six entries with `config` were all checked
    assert!(configs >= 6, "{configs} configs");
}
