//! A small typed model of a Grafana dashboard — rows of panels with `PromQL`/`MetricsQL` targets,
//! template variables from `label_values(…)`, dashboard links and panel data links — and its
//! serialisation to Grafana's dashboard JSON.
//!
//! The JSON is a function of the value alone: panel ids count up in layout order, and the grid
//! is computed from each panel's width and height (24 columns, panels flow left to right and
//! wrap), so the same model always gives the same bytes.

use std::fmt::Write as _;

use serde_json::{json, Value};

/// The datasource every built-in panel queries: `VictoriaMetrics`, Pigsty's uid.
pub const DATASOURCE: &str = "ds-prometheus";

/// Grafana 12.0's dashboard schema version.
pub const SCHEMA_VERSION: u32 = 41;

/// Columns of Grafana's grid.
const GRID_WIDTH: u32 = 24;

/// One dashboard.
#[derive(Debug, Clone)]
pub struct Board {
    /// Stable uid: the `/ui/d/<uid>` of every link to it.
    pub uid: &'static str,
    /// Title.
    pub title: &'static str,
    /// Grafana folder (the directory below `/etc/dashboards`); empty for the top level.
    pub folder: &'static str,
    /// Tags.
    pub tags: &'static [&'static str],
    /// What it shows, one sentence (also the README's line).
    pub description: &'static str,
    /// Template variables, in dependency order.
    pub vars: Vec<Var>,
    /// Links shown at the top of the dashboard.
    pub links: Vec<Link>,
    /// Rows of panels.
    pub rows: Vec<Row>,
}

/// A query variable: `label_values(<selector>, <label>)`. The selector may use the variables
/// before it (`up{ins="$ins"}`).
#[derive(Debug, Clone)]
pub struct Var {
    /// Name: `ins` makes `$ins` and the URL parameter `var-ins`.
    pub name: &'static str,
    /// Label shown above the picker.
    pub label: &'static str,
    /// Series selector whose label values are the choices.
    pub selector: String,
    /// The label whose values are the choices.
    pub label_name: &'static str,
}

/// A link to another dashboard, carrying variables in its URL.
#[derive(Debug, Clone)]
pub struct Link {
    /// Text shown.
    pub title: String,
    /// The target dashboard's uid.
    pub uid: &'static str,
    /// `var-<name>=<value>` parameters; values are Grafana interpolations such as `${ins}` or
    /// `${__field.labels.ins}`.
    pub vars: Vec<(&'static str, String)>,
}

/// A row: a title and its panels.
#[derive(Debug, Clone)]
pub struct Row {
    /// Title.
    pub title: &'static str,
    /// Panels, laid out left to right.
    pub panels: Vec<Panel>,
}

/// The kinds of panel the built-in dashboards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A graph over time.
    Timeseries,
    /// One big number per series.
    Stat,
    /// A gauge per series.
    Gauge,
    /// A table of instant values, one column per target.
    Table,
}

/// One query of a panel.
#[derive(Debug, Clone)]
pub struct Target {
    /// The `MetricsQL` expression (Grafana variables allowed).
    pub expr: String,
    /// Legend (`{{ins}}`), or the column name in a table.
    pub legend: String,
}

/// One panel.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Kind.
    pub kind: Kind,
    /// Title.
    pub title: &'static str,
    /// What it shows and where the data comes from.
    pub description: std::borrow::Cow<'static, str>,
    /// Grafana unit (`percentunit`, `bytes`, `s`, `reqps`, …).
    pub unit: &'static str,
    /// Width in grid columns (of 24).
    pub width: u32,
    /// Height in grid rows.
    pub height: u32,
    /// Queries.
    pub targets: Vec<Target>,
    /// Data links on every value (drill-down).
    pub links: Vec<Link>,
    /// Value mappings: value → (text, colour).
    pub mappings: Vec<(i64, &'static str, &'static str)>,
    /// Thresholds above the green base: (value, colour).
    pub thresholds: Vec<(f64, &'static str)>,
    /// Fixed range for gauges and percentages.
    pub range: Option<(f64, f64)>,
    /// A stat shows the series' legend (a version string) instead of its value.
    pub show_name: bool,
}

impl Panel {
    /// A panel of `kind` with no query yet: 8 columns by 8 rows.
    pub fn new(kind: Kind, title: &'static str, unit: &'static str) -> Self {
        Panel {
            kind,
            title,
            description: std::borrow::Cow::Borrowed(""),
            unit,
            width: 8,
            height: 8,
            targets: Vec::new(),
            links: Vec::new(),
            mappings: Vec::new(),
            thresholds: Vec::new(),
            range: None,
            show_name: false,
        }
    }

    /// Adds a query.
    #[must_use]
    pub fn q(mut self, expr: impl Into<String>, legend: impl Into<String>) -> Self {
        self.targets.push(Target {
            expr: expr.into(),
            legend: legend.into(),
        });
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn desc(mut self, text: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.description = text.into();
        self
    }

    /// Sets the size.
    #[must_use]
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Adds a data link.
    #[must_use]
    pub fn link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    /// Maps 0/1 to DOWN/UP in red and green.
    #[must_use]
    pub fn up_down(mut self) -> Self {
        self.mappings = vec![(0, "DOWN", "red"), (1, "UP", "green")];
        self
    }

    /// Maps 0/1 to "not synced"/"synced" in red and green.
    #[must_use]
    pub fn mappings_sync(mut self) -> Self {
        self.mappings = vec![(0, "not synced", "red"), (1, "synced", "green")];
        self
    }

    /// Maps `pg_in_recovery` 0/1 to primary/replica.
    #[must_use]
    pub fn role(mut self) -> Self {
        self.mappings = vec![(0, "primary", "green"), (1, "replica", "blue")];
        self
    }

    /// Adds thresholds above the green base.
    #[must_use]
    pub fn thresholds(mut self, steps: &[(f64, &'static str)]) -> Self {
        self.thresholds = steps.to_vec();
        self
    }

    /// Shows the legend (`{{version}}`) instead of the value.
    #[must_use]
    pub fn name(mut self) -> Self {
        self.show_name = true;
        self
    }

    /// Fixes the value range.
    #[must_use]
    pub fn range(mut self, min: f64, max: f64) -> Self {
        self.range = Some((min, max));
        self
    }
}

impl Link {
    /// A link to `uid` carrying `vars`.
    pub fn to(title: impl Into<String>, uid: &'static str, vars: &[(&'static str, &str)]) -> Self {
        Link {
            title: title.into(),
            uid,
            vars: vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        }
    }

    /// The URL: `/ui/d/<uid>?var-a=…&var-b=…`.
    pub fn url(&self) -> String {
        let mut url = format!("/ui/d/{}", self.uid);
        for (i, (k, v)) in self.vars.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            let _ = write!(url, "var-{k}={v}");
        }
        url
    }
}

/// `${__field.labels.<label>}`: a series label, in a graph's or stat's data link.
pub fn field(label: &str) -> String {
    format!("${{__field.labels.{label}}}")
}

/// `${__data.fields.<label>}`: a column of the clicked row, in a table's data link.
pub fn cell(label: &str) -> String {
    format!("${{__data.fields.{label}}}")
}

/// `${<name>}`: a variable's current value.
pub fn var(name: &str) -> String {
    format!("${{{name}}}")
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": DATASOURCE})
}

impl Board {
    /// The dashboard's file below `/etc/dashboards`: `<folder>/<uid>.json`.
    pub fn path(&self) -> String {
        if self.folder.is_empty() {
            format!("{}.json", self.uid)
        } else {
            format!("{}/{}.json", self.folder, self.uid)
        }
    }

    /// Every panel, in layout order.
    pub fn panels(&self) -> impl Iterator<Item = &Panel> {
        self.rows.iter().flat_map(|r| r.panels.iter())
    }

    /// Grafana's dashboard JSON.
    pub fn to_json(&self) -> Value {
        let links: Vec<Value> = self.links.iter().map(dashboard_link).collect();
        let vars: Vec<Value> = self.vars.iter().map(variable).collect();
        json!({
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "editable": true,
            "graphTooltip": 1,
            "timezone": "browser",
            "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"},
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "links": links,
            "templating": {"list": vars},
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": true, "hide": true, "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts", "type": "dashboard",
            }]},
            "panels": layout(&self.rows),
        })
    }
}

fn dashboard_link(l: &Link) -> Value {
    json!({
        "title": l.title, "type": "link", "url": l.url(), "icon": "dashboard",
        "keepTime": true, "includeVars": false, "targetBlank": false, "asDropdown": false,
        "tags": [], "tooltip": "",
    })
}

fn variable(v: &Var) -> Value {
    let query = format!("label_values({}, {})", v.selector, v.label_name);
    json!({
        "name": v.name, "label": v.label, "type": "query", "datasource": datasource(),
        "definition": query,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2, "sort": 1, "multi": false, "includeAll": false, "hide": 0, "regex": "",
        "current": {}, "options": [],
    })
}

/// Rows and panels with ids and grid positions, in order.
fn layout(rows: &[Row]) -> Vec<Value> {
    let mut out = Vec::new();
    let (mut id, mut y) = (1u32, 0u32);
    for row in rows {
        out.push(json!({
            "id": id, "type": "row", "title": row.title, "collapsed": false,
            "gridPos": {"x": 0, "y": y, "w": GRID_WIDTH, "h": 1}, "panels": [],
        }));
        id += 1;
        y += 1;
        let (mut x, mut line) = (0u32, 0u32);
        for p in &row.panels {
            let w = p.width.clamp(1, GRID_WIDTH);
            if x + w > GRID_WIDTH {
                y += line;
                x = 0;
                line = 0;
            }
            out.push(panel(p, id, [x, y, w, p.height]));
            id += 1;
            x += w;
            line = line.max(p.height);
        }
        y += line;
    }
    out
}

fn panel(p: &Panel, id: u32, grid: [u32; 4]) -> Value {
    let [x, y, w, h] = grid;
    let table = p.kind == Kind::Table;
    let targets: Vec<Value> = p
        .targets
        .iter()
        .zip('A'..='Z')
        .map(|(t, ref_id)| {
            let mut v = json!({
                "refId": ref_id.to_string(), "datasource": datasource(), "expr": t.expr,
                "legendFormat": t.legend, "range": !table, "instant": table,
            });
            if table {
                v["format"] = json!("table");
            }
            v
        })
        .collect();
    let mut defaults = json!({
        "unit": p.unit,
        "links": p.links.iter().map(data_link).collect::<Vec<_>>(),
        "thresholds": {"mode": "absolute", "steps": thresholds(&p.thresholds)},
        "mappings": mappings(&p.mappings),
        "color": {"mode": if p.kind == Kind::Timeseries { "palette-classic" } else { "thresholds" }},
    });
    if let Some((min, max)) = p.range {
        defaults["min"] = json!(min);
        defaults["max"] = json!(max);
    }
    let mut v = json!({
        "id": id, "type": kind_name(p.kind), "title": p.title, "description": p.description,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "datasource": datasource(), "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options(p),
    });
    if table {
        v["transformations"] = table_transformations(p);
    }
    v
}

/// A data link keeps the time range of the dashboard it is clicked on.
fn data_link(l: &Link) -> Value {
    let url = l.url();
    let sep = if url.contains('?') { '&' } else { '?' };
    json!({"title": l.title, "url": format!("{url}{sep}${{__url_time_range}}")})
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Timeseries => "timeseries",
        Kind::Stat => "stat",
        Kind::Gauge => "gauge",
        Kind::Table => "table",
    }
}

fn thresholds(steps: &[(f64, &str)]) -> Vec<Value> {
    let mut out = vec![json!({"color": "green", "value": null})];
    out.extend(steps.iter().map(|(v, c)| json!({"color": c, "value": v})));
    out
}

fn mappings(m: &[(i64, &str, &str)]) -> Vec<Value> {
    if m.is_empty() {
        return Vec::new();
    }
    let mut options = serde_json::Map::new();
    for (i, (value, text, color)) in m.iter().enumerate() {
        options.insert(
            value.to_string(),
            json!({"text": text, "color": color, "index": i}),
        );
    }
    vec![json!({"type": "value", "options": options})]
}

fn options(p: &Panel) -> Value {
    let reduce = json!({"calcs": ["lastNotNull"], "fields": "", "values": false});
    match p.kind {
        Kind::Timeseries => json!({
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": true},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }),
        Kind::Stat => json!({
            "reduceOptions": reduce, "colorMode": "background", "graphMode": "none",
            "textMode": if p.show_name { "name" } else { "auto" }, "justifyMode": "auto", "orientation": "auto",
        }),
        Kind::Gauge => json!({
            "reduceOptions": reduce, "showThresholdMarkers": true, "showThresholdLabels": false,
            "orientation": "auto",
        }),
        Kind::Table => json!({"showHeader": true, "cellHeight": "sm"}),
    }
}

/// Joins a table's instant queries into one row per series, drops the time and metric-name
/// columns and names each value column after its target's legend.
fn table_transformations(p: &Panel) -> Value {
    let mut rename = serde_json::Map::new();
    for (t, ref_id) in p.targets.iter().zip('A'..='Z') {
        let column = if p.targets.len() == 1 {
            "Value".to_owned()
        } else {
            format!("Value #{ref_id}")
        };
        rename.insert(column, json!(t.legend));
    }
    json!([
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {
            "excludeByName": {"Time": true, "__name__": true, "job": true},
            "renameByName": rename,
        }},
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(panels: Vec<Panel>) -> Board {
        Board {
            uid: "t",
            title: "T",
            folder: "f",
            tags: &[],
            description: "",
            vars: vec![Var {
                name: "ins",
                label: "Instance",
                selector: "up".into(),
                label_name: "ins",
            }],
            links: vec![Link::to("Home", "pigsty", &[])],
            rows: vec![Row { title: "R", panels }],
        }
    }

    #[test]
    fn panels_flow_left_to_right_and_wrap_at_24_columns() {
        let p = |w, h| Panel::new(Kind::Stat, "p", "none").q("up", "").size(w, h);
        let json = board(vec![p(12, 4), p(12, 6), p(8, 3), p(30, 2)]).to_json();
        let grid: Vec<(u64, u64, u64, u64, u64)> = json["panels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let g = &p["gridPos"];
                let n = |k: &str| g[k].as_u64().unwrap();
                (p["id"].as_u64().unwrap(), n("x"), n("y"), n("w"), n("h"))
            })
            .collect();
        assert_eq!(
            grid,
            [
                (1, 0, 0, 24, 1),
                (2, 0, 1, 12, 4),
                (3, 12, 1, 12, 6),
                (4, 0, 7, 8, 3),
                (5, 0, 10, 24, 2),
            ]
        );
    }

    #[test]
    fn links_carry_variables_and_data_links_the_time_range() {
        let l = Link::to("Node", "node-instance", &[("id", &field("ip")), ("x", "1")]);
        assert_eq!(
            l.url(),
            "/ui/d/node-instance?var-id=${__field.labels.ip}&var-x=1"
        );
        assert_eq!(Link::to("Home", "pigsty", &[]).url(), "/ui/d/pigsty");
        let json = board(vec![Panel::new(Kind::Table, "t", "none")
            .q("up", "up")
            .q("up", "again")
            .link(l)])
        .to_json();
        let panel = &json["panels"][1];
        assert_eq!(
            panel["fieldConfig"]["defaults"]["links"][0]["url"],
            "/ui/d/node-instance?var-id=${__field.labels.ip}&var-x=1&${__url_time_range}"
        );
        assert_eq!(
            panel["transformations"][1]["options"]["renameByName"],
            json!({"Value #A": "up", "Value #B": "again"})
        );
        assert_eq!(panel["targets"][1]["refId"], "B");
        assert_eq!(panel["targets"][1]["instant"], true);
        assert_eq!(json["links"][0]["url"], "/ui/d/pigsty");
        assert_eq!(
            json["templating"]["list"][0]["definition"],
            "label_values(up, ins)"
        );
        assert_eq!(json["schemaVersion"], SCHEMA_VERSION);
    }
}
