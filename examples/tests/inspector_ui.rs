//! The inspector's web UI in a real headless browser (Debian's Chromium, driven through
//! ChromeDriver's WebDriver protocol): the main job runs, the UI serves its data dir, and
//! the pages show what the store holds — live while the job runs, exactly once it is done.
//! Screenshots for the README are kept under `docs/ui/`.
//!
//! Needs `chromium` and `chromedriver` (`.ci/run` installs Debian's `chromium` and
//! `chromium-driver`; `BELDI_CHROMIUM` / `BELDI_CHROMEDRIVER` point elsewhere). Without
//! them the test fails under `CI=true` and is skipped, loudly, elsewhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_beldi-examples");

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let p = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    p.exists().then_some(p)
}

/// One HTTP/1.1 request to `port` on loopback; the status and the body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read the head, then as much body as it announces (ChromeDriver keeps the
    // connection open whatever the request asks).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let (head, start) = loop {
        let n = s.read(&mut buf).expect("a response");
        assert!(n > 0, "the connection closed before a response head");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8_lossy(&raw[..i]).into_owned(), i + 4);
        }
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = lower.contains("transfer-encoding: chunked");
    loop {
        let body = &raw[start..];
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        match s.read(&mut buf).expect("the response body") {
            0 => break,
            n => raw.extend_from_slice(&buf[..n]),
        }
    }
    let rest = String::from_utf8_lossy(&raw[start..]).into_owned();
    let body = if chunked { dechunk(&rest) } else { rest };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A WebDriver session on ChromeDriver.
struct Browser {
    port: u16,
    session: String,
    _driver: Proc,
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path, profile: &Path) -> Browser {
        let port = free_port();
        let driver = Proc(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        wait_for(Duration::from_secs(20), "chromedriver to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium.to_string_lossy(),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,860",
                     format!("--user-data-dir={}", profile.display())]
        }}}});
        let (status, body) = http(port, "POST", "/session", Some(&caps));
        assert_eq!(status, 200, "new session: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Browser {
            port,
            session,
            _driver: driver,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        );
        assert_eq!(status, 200, "{method} {path}: {text}");
        serde_json::from_str::<Value>(&text).unwrap()["value"].take()
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` in the page and returns what it returns.
    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn click(&self, css: &str) {
        let el = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("an element id")
            .to_owned();
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    fn screenshot(&self, to: &Path) {
        use std::io::Write as _;
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().expect("base64"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::File::create(to).unwrap().write_all(&png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | (val(*c) as u32) << (18 - 6 * i));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The inspector's JSON answer to `args` on `dir` (the same code the UI renders from).
fn inspect_json(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(EXE)
        .args(["inspect", "--app", "travel", "--json", "--data-dir"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inspect {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn web_ui_shows_the_store_live_and_exactly_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        tool("BELDI_CHROMIUM", "/usr/bin/chromium"),
        tool("BELDI_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "chromium and chromedriver are needed under CI=true (.ci/run installs Debian's chromium and chromium-driver)"
            );
        }
        eprintln!(
            "SKIPPED: no chromium/chromedriver (install Debian's chromium and chromium-driver)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");

    // The main job, open loop, long enough to watch it live.
    let mut job = Proc(
        Command::new(EXE)
            .args([
                "travel",
                "--requests",
                "1200",
                "--rate",
                "60",
                "--no-progress",
            ])
            .args(["--data-dir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for(Duration::from_secs(60), "the job's first instances", || {
        Command::new(EXE)
            .args(["inspect", "--app", "travel", "--data-dir"])
            .arg(&dir)
            .args(["instances", "--limit", "1"])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.starts_with(b"no instances"))
    });

    // The UI, on a free loopback port; it prints where it serves.
    let mut ui = Proc(
        Command::new(EXE)
            .args(["inspect", "--app", "travel", "--data-dir"])
            .arg(&dir)
            .args(["ui", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(ui.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("the UI says where it serves: {line:?}"))
        .trim_end_matches('/')
        .to_owned();

    let browser = Browser::start(&chromium, &chromedriver, &tmp.path().join("profile"));
    let count = |b: &Browser| -> u64 {
        b.js("return document.getElementById('instance-count').textContent")
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("an instance count")
    };

    // Live: while the job runs, the page refreshes itself and the count grows, with no
    // navigation.
    browser.go(&format!("{base}/"));
    let first = count(&browser);
    assert!(first > 0, "the page lists the job's instances");
    std::thread::sleep(Duration::from_millis(4500));
    let refreshes = browser
        .js("return Number(document.body.dataset.refreshes)")
        .as_u64()
        .unwrap();
    let later = count(&browser);
    assert!(refreshes >= 1, "the live page refreshed itself");
    assert!(
        later > first,
        "the live page shows new instances: {first} then {later}"
    );
    assert_eq!(
        browser.js("return location.pathname").as_str(),
        Some("/"),
        "refreshing does not navigate"
    );

    // Done: the job passes its invariants; the page then shows exactly what the store holds.
    let status = job.0.wait().unwrap();
    let mut stdout = String::new();
    job.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(status.success(), "the main job passed: {stdout}");
    // Its summary ends with the commands that open the inspector and the UI on its data.
    let tail: Vec<&str> = stdout.lines().rev().take(5).collect();
    let opts = format!("--data-dir {}", dir.display());
    assert!(
        tail.iter()
            .any(|l| l.contains("--bin beldi --") && l.contains(&opts) && l.contains(" ui ")),
        "the summary ends with the UI command: {tail:?}"
    );
    assert!(
        tail.iter()
            .any(|l| l.contains(&opts) && l.contains(" instances ")),
        "the summary ends with the CLI command: {tail:?}"
    );
    let store = inspect_json(&dir, &["instances"]);
    let store = store.as_array().unwrap();
    browser.go(&format!("{base}/"));
    assert_eq!(
        count(&browser),
        store.len() as u64,
        "the count is the store's"
    );
    let rows = browser.js(
        "return Array.from(document.querySelectorAll('#instances tr.instance')).map(r => [r.dataset.function, r.dataset.instance, r.dataset.state])",
    );
    let want: Vec<Value> = store
        .iter()
        .take(200)
        .map(|s| json!([s["function"], s["instance"], s["state"]]))
        .collect();
    assert_eq!(
        rows.as_array().unwrap(),
        &want,
        "the rows are the store's newest 200, in order"
    );
    browser.screenshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ui/instances.png"));

    // Filter to one function, follow a link: the instance page shows its log and calls.
    browser.go(&format!("{base}/?function=reserve&state=done"));
    let reserves: Vec<&Value> = store
        .iter()
        .filter(|s| s["function"] == "reserve" && s["state"] == "done")
        .collect();
    assert!(!reserves.is_empty(), "the job made reservations");
    assert_eq!(count(&browser), reserves.len() as u64);
    browser.click("#instances tr.instance a");
    wait_for(Duration::from_secs(10), "the instance page", || {
        browser.js("return location.pathname").as_str() == Some("/instance")
    });
    let shown = browser.js(
        "var h = document.getElementById('instance'); return [h.dataset.function, h.dataset.instance, h.dataset.state]",
    );
    assert_eq!(
        shown,
        json!(["reserve", reserves[0]["instance"], "done"]),
        "the link leads to the newest done reservation"
    );
    let instance = reserves[0]["instance"].as_str().unwrap();
    let detail = inspect_json(&dir, &["show", "reserve", instance]);
    let kinds = browser.js(
        "return Array.from(document.querySelectorAll('#steps tr.step')).map(r => r.dataset.kind)",
    );
    let want: Vec<&Value> = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["kind"])
        .collect();
    assert_eq!(kinds.as_array().unwrap().iter().collect::<Vec<_>>(), want);
    for kind in ["txn_begin", "commit", "call"] {
        assert!(
            want.iter().any(|k| *k == kind),
            "a reservation logs a {kind}"
        );
    }
    fn nodes(n: &Value) -> Vec<Value> {
        let mut out = vec![json!([n["function"], n["instance"]])];
        for c in n["calls"].as_array().unwrap() {
            out.extend(nodes(c));
        }
        out
    }
    let tree = browser.js(
        "return Array.from(document.querySelectorAll('#calls li.call')).map(l => [l.dataset.function, l.dataset.instance])",
    );
    assert_eq!(
        tree.as_array().unwrap(),
        &nodes(&detail["calls"]),
        "the call tree is the store's"
    );
    for f in ["hotel", "flight", "order"] {
        assert!(
            tree.as_array().unwrap().iter().any(|n| n[0] == f),
            "a reservation calls {f}"
        );
    }
    browser.screenshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ui/instance.png"));

    // Locks and statistics, against the store.
    browser.go(&format!("{base}/locks"));
    let locks = inspect_json(&dir, &["locks"]);
    assert_eq!(
        browser
            .js("return document.getElementById('lock-count').textContent")
            .as_str(),
        Some(locks.as_array().unwrap().len().to_string().as_str())
    );
    browser.go(&format!("{base}/stats"));
    let stats = inspect_json(&dir, &["stats"]);
    for f in stats.as_array().unwrap() {
        let done = browser.js(&format!(
            "return document.querySelector('#stats tr[data-function=\"{}\"] td[data-state=\"done\"]').textContent",
            f["function"].as_str().unwrap()
        ));
        assert_eq!(
            done.as_str(),
            Some(f["instances"]["done"].to_string().as_str())
        );
    }

    // Bad input gets a page that says what is wrong.
    browser.go(&format!(
        "{base}/instance?function=reserve&instance=no-such-id"
    ));
    let text = browser.js("return document.body.innerText");
    assert!(
        text.as_str()
            .unwrap()
            .contains("function `reserve` has no instance `no-such-id`"),
        "{text}"
    );
    drop(browser);
    let _ = ui.0.kill();
}
