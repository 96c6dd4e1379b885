//! The `config` policy, table-driven over snippets.

use super::*;

const ROOTS: Roots = Roots {
    home: "/www",
    path: Some("/data/site"),
};

#[test]
fn accepted() {
    for text in ACCEPTED {
        assert_eq!(check(text, &ROOTS), Vec::<String>::new(), "{text}");
    }
}

/// Snippets a real portal entry would carry; `tests/portal-config.yml` holds the same kinds,
/// rendered and checked by `nginx -t` in `tests/portal_config.rs`.
const ACCEPTED: &[&str] = &[
    "client_max_body_size 100m;",
    "location /api/ {\n    proxy_pass http://127.0.0.1:8000/;\n    proxy_set_header Host $host;\n    proxy_read_timeout 300s;\n}",
    "add_header X-Frame-Options \"SAMEORIGIN\" always;\nadd_header Content-Security-Policy \"default-src 'self'; img-src *\";",
    "location = /robots.txt { return 200 \"User-agent: *\\nDisallow: /\"; }",
    "location /static/ { root /www/static; expires 30d; try_files $uri $uri/ =404; }",
    "location / { root /data/site/app; try_files $uri $uri/ /index.html; index index.html; }",
    "location ~ ^/app/(.*)$ { rewrite ^/app/(.*)$ /$1 break; proxy_pass http://127.0.0.1:3000; }",
    "rewrite ^/old/(.*)$ /new/$1 permanent;\nreturn 301 https://$host$request_uri;",
    "location /admin/ { allow 10.0.0.0/8; deny all; auth_basic off; }",
    "location /upload { limit_except GET POST { deny all; } client_max_body_size 2g; }",
    "types { application/wasm wasm; }\ndefault_type application/octet-stream;",
    "gzip on;\ngzip_types text/css application/javascript;\ncharset utf-8;",
    "sub_filter '</head>' '<script src=\"/x.js\"></script></head>';\nsub_filter_once on;",
    "error_page 404 /404.html;\nerror_page 502 = @down;\nlocation @down { return 503; }",
    "access_log off;\n# a comment with } and { and \"\nlocation /x { } # trailing",
    "add_header X-Brace \"{ } ;\";",
];

#[test]
fn refused() {
    let cases: &[(&str, &str)] = &[
        (
            "add_header X \"{\"; }\n\"server\" { listen 8080; location / { root /; } }",
            "line 1: unexpected `}`: it closes a block this text did not open",
        ),
        (
            "\"server\" { listen 8080; }",
            "line 1: directive `server` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
        ),
        (
            "location / { include /etc/nginx/x.conf; }",
            "line 1: directive `include` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
        ),
        (
            "location / { content_by_lua_block { ngx.say(1); } }",
            "line 1: directive `content_by_lua_block` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
        ),
        ("root /etc;", "line 1: `root /etc` is outside the nginx home and this entry's path (`/www`, `/data/site`)"),
        ("root /wwwx;", "line 1: `root /wwwx` is outside the nginx home and this entry's path (`/www`, `/data/site`)"),
        ("root $x;", "line 1: `root`: `$x` is not a safe absolute path (letters, digits and `/._-+@` only, no `..`)"),
        ("root /www/../etc;", "line 1: `root`: `/www/../etc` is not a safe absolute path (letters, digits and `/._-+@` only, no `..`)"),
        (
            "location /x { alias /etc/; }",
            "line 1: directive `alias` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones); use `root`, which appends the request path and so cannot be escaped with `..`",
        ),
        ("try_files /../../etc/passwd =404;", "line 1: `..` is not allowed in `try_files` (`/../../etc/passwd`)"),
        ("try_files /$arg_f =404;", "line 1: `try_files` may use only the variable `$uri` here, found `$arg_f`"),
        (
            "rewrite ^/(.)(.)x$ /$1$2/etc/passwd last;",
            "line 1: `rewrite` may use only the variable `$uri` here, found `$1`; an internal `rewrite` that may reach files takes no other variables (use `break` in a location with `proxy_pass`, or a redirect)",
        ),
        (
            "location /x { rewrite ^ /$arg_p break; }",
            "line 1: `rewrite` may use only the variable `$uri` here, found `$arg_p`; an internal `rewrite` that may reach files takes no other variables (use `break` in a location with `proxy_pass`, or a redirect)",
        ),
        ("access_log /tmp/x.log;", "line 1: `access_log` may only be `off` here; the entry's `log` key names its log file"),
        ("add_header X \"a\nb\";", "line 1: a value spans lines; write `\\n` for a line break inside it"),
        ("add_header X a\\\nb;", "line 1: a value spans lines; write `\\n` for a line break inside it"),
        ("location /x;", "line 1: `location` needs a `{ ... }` block"),
        ("add_header X y { }", "line 1: `add_header` takes no `{ ... }` block"),
        (
            "location /x { limit_except GET { location /y { } } }",
            "line 1: directive `location` is not allowed inside `limit_except` (only `allow`, `deny`, `auth_basic`)",
        ),
        ("types { server { } }", "line 1: `types` holds `type extension ...;` entries, found `server`"),
        (
            "types { include /etc/nginx/mime.types; }",
            "line 1: directive `include` is not allowed in a portal entry's config (docs/portal-config.md lists the allowed ones)",
        ),
        ("add_header X y;\u{0}", "control character '\\0' is not allowed"),
    ];
    for (text, want) in cases {
        assert_eq!(check(text, &ROOTS), [(*want).to_owned()], "{text}");
    }
}

#[test]
fn a_free_rewrite_taints_uri() {
    let text = "location ~ ^/p/(.)(.)(.*)$ {\n  rewrite ^/p/(.)(.)(.*)$ /$1$2/$3 break;\n  proxy_pass http://127.0.0.1:1;\n  error_page 404 $uri;\n}\ntry_files $uri =404;";
    assert_eq!(
        check(text, &ROOTS),
        [
            "line 4: `error_page` may not use `$uri` here: the `rewrite` on line 2 builds it from other variables",
            "line 6: `try_files` may not use `$uri` here: the `rewrite` on line 2 builds it from other variables",
        ]
    );
    // a free rewrite that keeps to `$uri`, or literal targets, taint nothing
    let text = "location /p { rewrite ^ $uri/ break; proxy_pass http://127.0.0.1:1; }\ntry_files $uri =404;";
    assert_eq!(check(text, &ROOTS), Vec::<String>::new());
}

#[test]
fn reports_every_refused_directive() {
    let got = check("listen 81;\nlocation / {\n  load_module x.so;\n}", &ROOTS);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("line 1: directive `listen`"));
    assert!(got[1].starts_with("line 3: directive `load_module`"));
}

#[test]
fn variable_names() {
    assert_eq!(variables("$uri/${a}x$1$"), ["uri", "a", "1", ""]);
}
