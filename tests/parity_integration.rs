//! Pigsty parity items run by the real programs (integration tier, root: it starts nginx, the
//! nginx exporter, chronyd and dnsmasq on 127.0.83.x): the nginx exporter reads the status
//! page nginx serves to its own host and exports `nginx_*`; `chronyc` on the host talks to
//! chronyd through the Unix socket in its state directory and no command port is open;
//! dnsmasq serves the node VIP record and reads the operator's `*.conf` drop-ins. The fast
//! tests of the same items: `tests/parity.rs` and `src/plan/targets/tests.rs`.

mod common;

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infragen::plan::{self, Component, Plan};
use infragen::tree::Tree;
use infragen::validate::{self, Outcome};

const FILE: &str = "tests/parity_integration.rs";
const HOST: &str = "127.0.83.10";

const PROFILE: &str = "
all:
  children:
    infra:
      hosts: { 127.0.83.10: { infra_seq: 1 } }
      vars: { nginx_port: 18083, nginx_exporter_port: 19113, dns_port: 15353 }
    web:
      hosts: { 127.0.83.21: {}, 127.0.83.22: {} }
      vars: { node_cluster: web, vip_enabled: true, vip_address: 127.0.83.9, vip_dns_suffix: .vip }
  vars: { admin_ip: 127.0.83.10, node_ntp_servers: [] }
";

fn plan_of(text: &str) -> Plan {
    let inv = infragen::profile::parse("parity.yml", text).unwrap();
    plan::resolve(&inv).unwrap_or_else(|e| panic!("{e}"))
}

/// The rendered file `<component>/<path>` of the infra host.
fn file(tree: &Tree, component: &str, path: &str) -> String {
    let full = format!("{HOST}/{component}/{path}");
    let f = tree.get(&full).unwrap_or_else(|| panic!("no {full}"));
    String::from_utf8(f.data.clone()).unwrap()
}

/// A process this test started, killed (by its own id) when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(cmd: &mut Command) -> Running {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    Running(child)
}

/// `GET path` from `addr` over plain HTTP/1.0: the body, or `None` when nothing answers.
fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {HOST}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Waits up to 20 s for `f` to give a value.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// nginx started by a test: stopped with SIGTERM, which stops its workers too (a killed master
/// leaves them serving).
struct Nginx(Running);

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.0 .0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.0 .0.wait();
    }
}

/// The rendered `location = /nginx { … }` block of the home server.
fn status_location(home: &str) -> String {
    let from = home
        .find("    location = /nginx {")
        .expect("the status location");
    let len = home[from..].find("\n    }\n").expect("its end") + "\n    }\n".len();
    home[from..from + len].to_owned()
}

#[test]
fn the_exporter_reads_the_status_page_nginx_serves_to_its_host() {
    common::tier::binary(common::tier::Tier::Integration, FILE);
    let tree = infragen::render::plan(&plan_of(PROFILE)).unwrap();
    let location = status_location(&file(&tree, "nginx", "etc/nginx/conf.d/home.conf"));
    assert!(
        location.contains(&format!("allow {HOST};")) && location.contains("deny all;"),
        "{location}"
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "pid {d}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n  \
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             server {{\n    listen {HOST}:18083;\n{location}  }}\n}}\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let nginx = Nginx(start(
        Command::new("nginx")
            .args(["-g", "daemon off;", "-c"])
            .arg(&conf),
    ));
    // The exporter runs with exactly the flags the plan gives its unit.
    let env = file(&tree, "nginxexporter", "etc/default/nginxexporter");
    let opts = env
        .lines()
        .find_map(|l| l.strip_prefix("NGINXEXPORTER_OPTS=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("NGINXEXPORTER_OPTS");
    assert!(
        opts.contains(&format!("-nginx.scrape-uri=http://{HOST}:18083/nginx")),
        "{opts}"
    );
    let _exporter = start(Command::new("prometheus-nginx-exporter").args(opts.split(' ')));
    let metrics = wait_for("nginx_up 1 on the exporter", || {
        get(&format!("{HOST}:19113"), "/metrics").filter(|m| m.contains("\nnginx_up 1"))
    });
    for name in [
        "nginx_connections_accepted",
        "nginx_connections_active",
        "nginx_http_requests_total",
    ] {
        assert!(
            metrics.contains(&format!("\n{name} ")),
            "{name} missing:\n{metrics}"
        );
    }
    // The metrics are nginx's: without nginx the exporter says so.
    drop(nginx);
    wait_for("nginx_up 0 once nginx is gone", || {
        get(&format!("{HOST}:19113"), "/metrics").filter(|m| m.contains("\nnginx_up 0"))
    });
}

#[test]
fn the_exporter_checker_is_the_program_parsing_its_flags() {
    common::tier::binary(common::tier::Tier::Integration, FILE);
    let mut plan = plan_of(PROFILE);
    let tree = infragen::render::plan(&plan).unwrap();
    let check = |plan: &Plan| {
        let report = validate::tree(plan, &tree).unwrap();
        let c = report
            .checks
            .iter()
            .find(|c| c.component == Component::NginxExporter)
            .expect("the exporter is checked");
        c.outcome.clone()
    };
    assert_eq!(check(&plan), Outcome::Accepted);
    // A negative canary: a value the program refuses is rejected with its own words.
    let e = plan.hosts[0].nginx_exporter.as_mut().unwrap();
    e.flags.push("-nginx.timeout=soon".to_owned());
    match check(&plan) {
        Outcome::Rejected(text) => assert!(
            text.contains("invalid value \"soon\" for flag -nginx.timeout"),
            "{text}"
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn chronyc_on_the_host_talks_through_the_socket_and_no_command_port_is_open() {
    common::tier::binary(common::tier::Tier::Integration, FILE);
    let tree = infragen::render::plan(&plan_of(PROFILE)).unwrap();
    let conf = file(&tree, "chrony", "etc/chrony/chrony.conf");
    assert!(conf.contains("\ncmdport 0\n"), "{conf}");
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    // The state directory the unit binds in, here a directory of the test owned by _chrony.
    let state = dir.path().join("var-lib-chrony");
    fs::create_dir(&state).unwrap();
    let chown = Command::new("chown")
        .arg("_chrony:_chrony")
        .arg(&state)
        .status()
        .unwrap();
    assert!(
        chown.success(),
        "chown _chrony (Debian's chrony package makes the user)"
    );
    let conf = conf.replace("/var/lib/chrony", &state.display().to_string())
        + &format!("pidfile {}/chronyd.pid\n", dir.path().display());
    let path = dir.path().join("chrony.conf");
    fs::write(&path, conf).unwrap();
    // Another chronyd of this machine (a booted test's container shares its network) may
    // answer on 127.0.0.1:323 already: then that address proves nothing about ours.
    let loopback_taken = chronyc_answers("127.0.0.1");
    if loopback_taken {
        println!("======== NOTE: another chronyd answers on 127.0.0.1 already; only {HOST} is checked for a command port ========");
    }
    let _chronyd = start(Command::new("chronyd").args(["-d", "-x", "-f"]).arg(&path));
    let socket = state.join("cmd/chronyd.sock");
    let tracking = wait_for("chronyc tracking through the socket", || {
        let o = Command::new("chronyc")
            .arg("-h")
            .arg(&socket)
            .arg("tracking")
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert!(tracking.contains("Reference ID"), "{tracking}");
    assert!(
        common::ntp(&format!("{HOST}:123")),
        "chronyd serves NTP on {HOST}"
    );
    // No command port: chronyc over the network finds no daemon.
    for host in [HOST, "127.0.0.1"] {
        if host == "127.0.0.1" && loopback_taken {
            continue;
        }
        assert!(!chronyc_answers(host), "chronyc -h {host} answered");
    }
}

/// Whether a chronyd answers `chronyc tracking` on `host`'s command port.
fn chronyc_answers(host: &str) -> bool {
    Command::new("timeout")
        .args(["10", "chronyc", "-h", host, "tracking"])
        .output()
        .unwrap()
        .status
        .success()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn dnsmasq_serves_the_node_vip_and_reads_the_operator_drop_ins() {
    common::tier::binary(common::tier::Tier::Integration, FILE);
    let tree = infragen::render::plan(&plan_of(PROFILE)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let conf =
        file(&tree, "dnsmasq", "etc/dnsmasq.conf").replace("/etc/dnsmasq.d/", &format!("{d}/"));
    assert!(
        conf.contains(&format!("conf-dir={d}/local/,*.conf")),
        "{conf}"
    );
    fs::write(dir.path().join("dnsmasq.conf"), &conf).unwrap();
    fs::create_dir(dir.path().join("pigsty")).unwrap();
    for name in ["default", "web.vip"] {
        let text = file(&tree, "dnsmasq", &format!("etc/dnsmasq.d/pigsty/{name}"));
        fs::write(dir.path().join("pigsty").join(name), text).unwrap();
    }
    // dnsmasq reads the directory: without it, its own check refuses the configuration.
    let test = |what: &str| {
        Command::new("dnsmasq")
            .arg("--test")
            .arg(format!("--conf-file={d}/dnsmasq.conf"))
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    };
    assert!(
        !test("without local/").status.success(),
        "a missing conf-dir is refused"
    );
    let local = dir.path().join("local");
    fs::create_dir(&local).unwrap();
    fs::write(
        local.join("extra.conf"),
        "address=/dropin.test/127.0.0.77\n",
    )
    .unwrap();
    fs::write(
        local.join("notes.txt"),
        "address=/ignored.test/127.0.0.78\n",
    )
    .unwrap();
    assert!(test("with local/").status.success());
    let _dnsmasq = start(
        Command::new("dnsmasq")
            .args(["--keep-in-foreground", "--user=root", "--no-resolv"])
            .arg(format!("--conf-file={d}/dnsmasq.conf")),
    );
    let server = format!("{HOST}:15353");
    let vip = wait_for("the node VIP record", || common::dns_a(&server, "web.vip"));
    assert_eq!(vip, "127.0.83.9");
    assert_eq!(
        common::dns_a(&server, "dropin.test").as_deref(),
        Some("127.0.0.77")
    );
    assert_eq!(
        common::dns_a(&server, "ignored.test"),
        None,
        "only *.conf is read"
    );
}
