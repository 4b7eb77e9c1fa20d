//! The web UI: server-rendered HTML pages over the [`Inspector`], served over HTTP/1.1 on
//! a listener the caller binds (loopback by default), with a few lines of inline script
//! that refresh the page's content every two seconds while "live" is ticked. No assets, no
//! build step.
//!
//! Pages: `/` instances (filters `function`, `state`, `limit`), `/instance?function=F&instance=I`
//! (summary, input, result, step timeline, call tree), `/locks`, `/stats`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use beldi_runtime::inspect::{
    CallNode, InspectError, Inspector, InstanceFilter, InstanceState, StepView,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::CliError;
use super::text::{age, caller};

/// Longest request head the server reads.
const MAX_HEAD: usize = 16 * 1024;
/// How often a live page refreshes its content.
const REFRESH_MS: u64 = 2000;

/// Serves the UI on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, inspector: Inspector) -> Result<(), CliError> {
    loop {
        let (stream, _) = listener.accept().await.map_err(|source| CliError::Io {
            what: "accepting a connection".into(),
            source,
        })?;
        let inspector = inspector.clone();
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's problem.
            let _ = connection(stream, &inspector).await;
        });
    }
}

async fn connection(mut stream: TcpStream, inspector: &Inspector) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return respond(&mut stream, 431, "text/plain", "request head too large").await;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", "only GET is served").await;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = parse_query(query);
    let (status, body) = match page(path, &params, inspector).await {
        Ok(Some(body)) => (200, body),
        Ok(None) => (
            404,
            layout(
                "Not found",
                "",
                &format!("<p class=\"error\">No page <code>{}</code>.</p>", esc(path)),
            ),
        ),
        Err(e) => {
            let status = match e {
                InspectError::UnknownFunction { .. } | InspectError::UnknownInstance { .. } => 404,
                InspectError::UnknownState(_) => 400,
                _ => 500,
            };
            (
                status,
                layout(
                    "Error",
                    "",
                    &format!("<p class=\"error\">{}</p>", esc(&e.to_string())),
                ),
            )
        }
    };
    let body = if method == "HEAD" {
        String::new()
    } else {
        body
    };
    respond(&mut stream, status, "text/html; charset=utf-8", &body).await
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    kind: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

async fn page(
    path: &str,
    q: &BTreeMap<String, String>,
    inspector: &Inspector,
) -> Result<Option<String>, InspectError> {
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    Ok(Some(match path {
        "/" => {
            let filter = InstanceFilter {
                function: get("function"),
                state: get("state").map(|s| s.parse()).transpose()?,
                limit: Some(get("limit").and_then(|l| l.parse().ok()).unwrap_or(200)),
            };
            instances_page(inspector, &filter).await?
        }
        "/instance" => {
            let (Some(f), Some(i)) = (get("function"), get("instance")) else {
                return Ok(None);
            };
            instance_page(inspector, &f, &i).await?
        }
        "/locks" => locks_page(inspector).await?,
        "/stats" => stats_page(inspector).await?,
        _ => return Ok(None),
    }))
}

async fn instances_page(
    inspector: &Inspector,
    filter: &InstanceFilter,
) -> Result<String, InspectError> {
    let functions = inspector.functions().await?;
    let list = inspector
        .instances(&InstanceFilter {
            limit: None,
            ..filter.clone()
        })
        .await?;
    let mut by_state: BTreeMap<InstanceState, usize> = BTreeMap::new();
    for s in &list {
        *by_state.entry(s.state).or_default() += 1;
    }
    let mut h = String::new();
    h.push_str("<form id=\"filters\" method=\"get\" action=\"/\"><label>function <select name=\"function\"><option value=\"\">all</option>");
    for f in &functions {
        let sel = if filter.function.as_deref() == Some(&f.name) {
            " selected"
        } else {
            ""
        };
        let _ = write!(h, "<option{sel}>{}</option>", esc(&f.name));
    }
    h.push_str(
        "</select></label> <label>state <select name=\"state\"><option value=\"\">all</option>",
    );
    for s in InstanceState::ALL {
        let sel = if filter.state == Some(s) {
            " selected"
        } else {
            ""
        };
        let _ = write!(h, "<option{sel}>{s}</option>");
    }
    h.push_str("</select></label> <button type=\"submit\">filter</button></form>");
    let _ = write!(
        h,
        "<p id=\"summary\"><span id=\"instance-count\">{}</span> instance(s)",
        list.len()
    );
    for (s, n) in &by_state {
        let _ = write!(
            h,
            " · <span class=\"state {s}\" data-state=\"{s}\">{n} {s}</span>"
        );
    }
    h.push_str("</p>");
    let shown = filter.limit.unwrap_or(usize::MAX);
    h.push_str("<table id=\"instances\"><thead><tr><th>function</th><th>instance</th><th>state</th><th>age</th><th>result</th><th>caller</th><th>restarts</th></tr></thead><tbody>");
    for s in list.iter().take(shown) {
        let _ = write!(
            h,
            "<tr class=\"instance\" data-function=\"{f}\" data-instance=\"{i}\" data-state=\"{st}\"><td>{f}</td><td><a href=\"{href}\">{i}</a></td><td><span class=\"state {st}\">{st}</span></td><td>{age}</td><td>{res}</td><td>{caller}</td><td>{r}</td></tr>",
            f = esc(&s.function),
            i = esc(&s.instance),
            st = s.state,
            href = instance_href(&s.function, &s.instance),
            age = age(s.age_ms),
            res = s.result.as_ref().map_or("-", |r| r.kind),
            caller = esc(&caller(s)),
            r = s.restarts,
        );
    }
    h.push_str("</tbody></table>");
    if list.len() > shown {
        let _ = write!(h, "<p>showing the newest {shown} of {}</p>", list.len());
    }
    Ok(layout("Instances", "instances", &h))
}

fn instance_href(function: &str, instance: &str) -> String {
    format!(
        "/instance?function={}&amp;instance={}",
        pct(function),
        pct(instance)
    )
}

async fn instance_page(
    inspector: &Inspector,
    function: &str,
    instance: &str,
) -> Result<String, InspectError> {
    let d = inspector.instance(function, instance).await?;
    let s = &d.summary;
    let mut h = String::new();
    let _ = write!(
        h,
        "<h1 id=\"instance\" data-function=\"{f}\" data-instance=\"{i}\" data-state=\"{st}\">{f} / {i} <span class=\"state {st}\">{st}</span></h1><dl><dt>started</dt><dd>{age} ago{asy}</dd><dt>caller</dt><dd>{caller}</dd><dt>restarts</dt><dd>{r}</dd><dt>input</dt><dd><pre id=\"input\">{input}</pre></dd><dt>result</dt><dd><pre id=\"result\">{result}</pre></dd></dl>",
        f = esc(&s.function),
        i = esc(&s.instance),
        st = s.state,
        age = age(s.age_ms),
        asy = if s.is_async { " (async)" } else { "" },
        caller = match &s.caller {
            Some(c) => format!(
                "<a href=\"{}\">{}</a>",
                instance_href(&c.function, &c.instance),
                esc(&caller(s))
            ),
            None => "-".into(),
        },
        r = s.restarts,
        input = esc(&pretty(&d.input)),
        result = match &s.result {
            Some(r) => format!("{}: {}", r.kind, esc(&pretty(&r.value))),
            None => "(not finished)".into(),
        },
    );
    let _ = write!(h, "<h3>Timeline ({} steps)</h3>", d.steps.len());
    if d.steps.is_empty() {
        h.push_str("<p>No logged steps (none yet, or collected by the garbage collector).</p>");
    }
    h.push_str("<table id=\"steps\"><thead><tr><th>step</th><th>kind</th><th>target</th><th>value</th></tr></thead><tbody>");
    for st in &d.steps {
        step_row(&mut h, st);
    }
    h.push_str("</tbody></table><h3>Calls</h3><ul id=\"calls\" class=\"tree\">");
    tree(&mut h, &d.calls);
    h.push_str("</ul>");
    Ok(layout(&format!("{function} / {instance}"), "instances", &h))
}

fn step_row(h: &mut String, st: &StepView) {
    let value = st.value.as_ref().map_or_else(String::new, |v| {
        let text = pretty(v);
        if text.len() > 160 {
            format!(
                "<details><summary>{}…</summary><pre>{}</pre></details>",
                esc(&text.chars().take(80).collect::<String>()),
                esc(&text)
            )
        } else {
            format!("<code>{}</code>", esc(&text))
        }
    });
    let target = match &st.callee {
        Some(c) => format!(
            "{} → <a href=\"{}\">{}</a>",
            esc(&st.target),
            instance_href(&st.target, c),
            esc(c)
        ),
        None => esc(&st.target),
    };
    let _ = write!(
        h,
        "<tr class=\"step\" data-kind=\"{k}\"><td>{n}</td><td><span class=\"kind {k}\">{k}</span></td><td>{target}</td><td>{value}</td></tr>",
        k = esc(&st.kind),
        n = st.step.map_or_else(|| esc(&st.key), |n| n.to_string()),
    );
}

fn tree(h: &mut String, node: &CallNode) {
    let _ = write!(
        h,
        "<li class=\"call\" data-function=\"{f}\" data-instance=\"{i}\">{step}<a href=\"{href}\">{f} / {i}</a> <span class=\"state {st}\">{st}</span>{asy}",
        f = esc(&node.function),
        i = esc(&node.instance),
        st = node.state,
        href = instance_href(&node.function, &node.instance),
        step = node
            .step
            .map_or_else(String::new, |s| format!("<span class=\"at\">@{s}</span> ")),
        asy = if node.is_async && node.step.is_some() {
            " <em>async</em>"
        } else {
            ""
        },
    );
    if !node.calls.is_empty() {
        h.push_str("<ul>");
        for c in &node.calls {
            tree(h, c);
        }
        h.push_str("</ul>");
    }
    h.push_str("</li>");
}

async fn locks_page(inspector: &Inspector) -> Result<String, InspectError> {
    let locks = inspector.locks().await?;
    let mut h = format!(
        "<p><span id=\"lock-count\">{}</span> lock(s) held</p>",
        locks.len()
    );
    h.push_str("<table id=\"locks\"><thead><tr><th>function</th><th>table</th><th>key</th><th>holder</th><th>held for</th><th>coordinator</th></tr></thead><tbody>");
    for l in &locks {
        let _ = write!(
            h,
            "<tr class=\"lock\"><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&l.function),
            esc(&l.table),
            esc(&l.key),
            esc(&l.holder),
            l.held_ms.map_or_else(|| "-".into(), age),
            l.coordinator.as_ref().map_or_else(
                || "-".into(),
                |c| format!(
                    "<a href=\"{}\">{} / {}</a>",
                    instance_href(&c.function, &c.instance),
                    esc(&c.function),
                    esc(&c.instance)
                )
            ),
        );
    }
    h.push_str("</tbody></table>");
    Ok(layout("Locks", "locks", &h))
}

async fn stats_page(inspector: &Inspector) -> Result<String, InspectError> {
    let stats = inspector.stats().await?;
    let mut h = String::from("<table id=\"stats\"><thead><tr><th>function</th>");
    for s in InstanceState::ALL {
        let _ = write!(h, "<th>{s}</th>");
    }
    h.push_str("<th>log items</th></tr></thead><tbody>");
    for f in &stats {
        let _ = write!(
            h,
            "<tr class=\"function\" data-function=\"{0}\"><td>{0}</td>",
            esc(&f.function)
        );
        for s in InstanceState::ALL {
            let _ = write!(
                h,
                "<td data-state=\"{s}\">{}</td>",
                f.instances.get(&s).copied().unwrap_or(0)
            );
        }
        let _ = write!(h, "<td>{}</td></tr>", f.log_items);
    }
    h.push_str("</tbody></table><h3>DAAL chains</h3><table id=\"chains\"><thead><tr><th>function</th><th>table</th><th>keys</th><th>rows</th><th>max rows/key</th><th>entries</th></tr></thead><tbody>");
    for f in &stats {
        for t in &f.tables {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.function),
                esc(&t.table),
                t.keys,
                t.rows,
                t.max_rows_per_key,
                t.entries
            );
        }
    }
    h.push_str("</tbody></table>");
    Ok(layout("Statistics", "stats", &h))
}

/// A whole page: the header, `content` under an `<h1>` of `title` (unless `content` brings
/// its own, as the instance page does), and the live-refresh script.
fn layout(title: &str, current: &str, content: &str) -> String {
    let heading = if content.starts_with("<h1") {
        String::new()
    } else {
        format!("<h1>{}</h1>", esc(title))
    };
    let nav: String = [
        ("instances", "/", "Instances"),
        ("locks", "/locks", "Locks"),
        ("stats", "/stats", "Statistics"),
    ]
    .iter()
    .map(|(id, href, label)| {
        let cls = if *id == current {
            " class=\"current\""
        } else {
            ""
        };
        format!("<a{cls} href=\"{href}\">{label}</a>")
    })
    .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · beldi</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}}
header{{background:#1d2330;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.4rem;align-items:center}}
header b{{font-size:1.1rem}} header a{{color:#cfd6e4;text-decoration:none}} header a.current{{color:#fff;border-bottom:2px solid #6ea8fe}}
header label{{margin-left:auto;font-size:.9rem}}
main{{padding:1rem 1.2rem}} h1{{font-size:1.3rem}} table{{border-collapse:collapse;background:#fff;width:100%}}
th,td{{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #e3e6eb;vertical-align:top}} th{{background:#eef0f4}}
pre{{margin:0;white-space:pre-wrap}} code{{font-size:.85rem}} dl{{display:grid;grid-template-columns:8rem 1fr;gap:.2rem .8rem}} dd{{margin:0}}
.state,.kind{{padding:0 .4rem;border-radius:.6rem;font-size:.8rem;background:#e3e6eb}}
.state.running{{background:#fff3cd}} .state.done{{background:#d1e7dd}} .state.failed,.state.died{{background:#f8d7da}}
.kind{{background:#e7f1ff}} .error{{color:#a01c2c}} ul.tree{{background:#fff;padding:.6rem 1.6rem}} footer{{color:#6b7280;padding:0 1.2rem 1rem}}
</style></head>
<body data-refreshes="0"><header><b>beldi</b>{nav}<label><input type="checkbox" id="live" checked> live</label></header>
<main id="content">{heading}{content}<p id="updated" style="color:#6b7280">updated <time>{now}</time></p></main>
<script>
(function () {{
  var live = document.getElementById('live'), n = 0;
  setInterval(function () {{
    if (!live.checked) return;
    fetch(location.href, {{cache: 'no-store'}}).then(function (r) {{ return r.ok ? r.text() : null; }}).then(function (html) {{
      if (html === null) return;
      var next = new DOMParser().parseFromString(html, 'text/html').getElementById('content');
      if (next) {{ document.getElementById('content').replaceWith(next); document.body.dataset.refreshes = ++n; }}
    }}).catch(function () {{}});
  }}, {REFRESH_MS});
}})();
</script></body></html>
"#,
        title = esc(title),
        now = beldi_runtime::inspect::now_ms(),
    )
}

fn pretty(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// HTML-escapes text.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Parses `a=1&b=x%20y` (with `+` as space).
fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unpct(k), unpct(v))
        })
        .collect()
}

fn unpct(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            {
                Some(x) => {
                    out.push(x);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_round_trip_through_percent_encoding() {
        for v in ["plain", "a b&c=d", "ünï/cödé#1", "100%", "%zz", "%4"] {
            let q = parse_query(&format!("k={}", pct(v)));
            assert_eq!(q.get("k").map(String::as_str), Some(v), "{v}");
        }
        let q = parse_query("a=1+2&b=%41%42&c=%zz&d=%4");
        assert_eq!(q["a"], "1 2");
        assert_eq!(q["b"], "AB");
        assert_eq!(q["c"], "%zz");
        assert_eq!(q["d"], "%4");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
