//! The dashboard in a real browser: a stack on a virtual clock (etcd, the
//! services, four agents) runs a launch roll-out held after its first wave;
//! `tilewave dashboard` serves it with the user's certificate
//! (release-engineer) and, in a second process, with a viewer's; headless
//! Chromium, driven over WebDriver (Debian's chromedriver), checks that the
//! grid has one cell per planned region and that cells change state live
//! without a reload, that the Gantt chart draws the deadline and GA lines
//! and shades the launch calendar's blackout, that the
//! release engineer sees the pause button and the viewer does not, and that
//! the viewer's POST of the pause form is refused by the rollout service
//! (403 with its message). Requests without the token are refused (401),
//! and so are POSTs without the form's CSRF value or from another origin.
//! At the hold, the release engineer approves through the confirmation
//! page and wave 2's cell changes live; the launches page takes a tile
//! change in place; when the rollout service goes away, and then the
//! dashboard, the page shows its "reconnecting" banner.
//! A screenshot of each page at desktop (1280x900) and phone (390x844)
//! width is saved in the test's directory (kept with
//! TILEWAVE_KEEP_TEST_DIRS=1 or on failure).
//!
//! Skipped, saying why, when chromium or chromedriver is missing, unless
//! CI=true (then it fails). `scripts/setup` installs both.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tilewave_testkit::{TestDir, eventually, free_port};

use super::{Cli, binaries_built, code, prepare_launch, stdout};

/// A child process killed (by its own id) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The processes below `pid` (children first found, then theirs), from
/// /proc: the browser chromedriver started, which would outlive it.
fn descendants(pid: u32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut queue = vec![pid.to_string()];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace() {
                if let Ok(n) = c.parse::<i32>() {
                    found.push(n);
                    queue.push(c.to_owned());
                }
            }
        }
    }
    found
}

/// chromedriver, and the browser it started: both killed by id when
/// dropped, also when the test fails before closing the session.
struct Driver(Killed);

impl Drop for Driver {
    fn drop(&mut self) {
        for pid in descendants(self.0.0.id()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The path of `name` on PATH, if any.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or why the test cannot run.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = which("chromium")
        .or_else(|| which("chromium-browser"))
        .ok_or("chromium is not installed (scripts/setup installs it)")?;
    let driver = which("chromedriver")
        .ok_or("chromedriver is not installed (scripts/setup installs chromium-driver)")?;
    Ok((chromium, driver))
}

/// A minimal WebDriver client (the W3C protocol over HTTP): a session,
/// navigation, script execution, window size, screenshots.
struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: Driver,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    async fn start(chromium: &Path, driver: &Path, profile: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let driver = Driver(Killed(child));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        eventually("chromedriver answers", Duration::from_secs(20), || {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let r = http.get(format!("{base}/status")).send().await?;
                anyhow::ensure!(r.status().is_success(), "status {}", r.status());
                Ok(())
            }
        })
        .await?;
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium.to_string_lossy(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--hide-scrollbars", format!("--user-data-dir={}", profile.display()), "--window-size=1280,900"]
        }}}});
        let mut b = Self {
            http,
            base,
            _driver: driver,
        };
        let session = b.call("POST", "/session", Some(caps)).await?;
        let id = session["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no session id in {session}"))?
            .to_owned();
        b.base = format!("{}/session/{id}", b.base);
        Ok(b)
    }

    /// One command; the answer's `value`.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "POST" => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.unwrap_or_else(|| json!({})).to_string()),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = serde_json::from_str(&resp.text().await?)?;
        anyhow::ensure!(status.is_success(), "WebDriver {method} {path}: {status}: {v}");
        Ok(v["value"].clone())
    }

    async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call("POST", "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// Runs `script` (a function body) in the page; its return value.
    async fn js(&self, script: &str) -> anyhow::Result<Value> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Runs an async `script` whose last argument is the callback.
    async fn js_async(&self, script: &str) -> anyhow::Result<Value> {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Makes the viewport `width` x `height` (a phone's under 700 px):
    /// Chromium's device emulation through chromedriver's CDP command, as a
    /// window cannot be made narrower than 500 px.
    async fn size(&self, width: u32, height: u32) -> anyhow::Result<()> {
        let params =
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700 });
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({ "cmd": "Emulation.setDeviceMetricsOverride", "params": params })),
        )
        .await
        .map(drop)
    }

    /// Waits until `script` returns true.
    async fn until(&self, what: &str, script: &str, limit: Duration) -> anyhow::Result<()> {
        eventually(what, limit, || async {
            let v = self.js(script).await?;
            anyhow::ensure!(v == json!(true), "not yet: {v}");
            Ok(())
        })
        .await
    }

    /// A PNG of the viewport.
    async fn screenshot(&self, to: &Path) -> anyhow::Result<()> {
        let v = self.call("GET", "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default())?;
        anyhow::ensure!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(to, png)?;
        Ok(())
    }

    async fn close(&self) {
        let _ = self.call("DELETE", "", None).await;
    }
}

/// Starts `tilewave dashboard` on a free loopback port with `vars`; returns
/// the process and the URL it printed (with its token).
fn dashboard(cli: &Cli, vars: &[(&str, String)]) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tilewave"))
        .args(["dashboard", "--listen", "127.0.0.1:0"])
        .env("TILEWAVE_DEV_DIR", cli.dev_dir())
        .env("TILEWAVE_CONFIG", cli.config())
        .env("USER", "it-test")
        .env_remove("TILEWAVE_TLS_CERT")
        .env_remove("TILEWAVE_TLS_KEY")
        .env_remove("TILEWAVE_TLS_CA")
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting tilewave dashboard");
    let out = child.stdout.take().expect("piped stdout");
    let child = Killed(child);
    let mut line = String::new();
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .expect("reading the dashboard's first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the dashboard prints its URL: {line:?}"))
        .to_owned();
    (child, url)
}

/// The origin of a URL (`http://host:port`).
fn origin(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    format!("http://{}", rest.split('/').next().unwrap_or(rest))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_live_rollout_in_chromium_and_guards_its_buttons() {
    let (chromium, driver) = match browser() {
        Ok(b) => b,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but {why}");
            }
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    if !binaries_built(&["tilewave-registry", "tilewave-rollout", "tilewave-agent"]) {
        return;
    }
    let dir = TestDir::new("dashboard-it").unwrap();
    let shots = dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };
    let up = cli.run(&["dev", "up", "--regions", "4", "--virtual-clock", "--rate", "100"]);
    assert_eq!(code(&up), 0);
    let regions = tilewave_core::regions::RegionCatalog::builtin().representative(4);
    prepare_launch(&cli, "riverflow");
    // A blackout on the launch calendar two days on: the chart shades it.
    let clock = cli.run(&["clock", "show", "-o", "json"]);
    let now: jiff::Timestamp = serde_json::from_slice::<Value>(&clock.stdout).unwrap()["now"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let at = |h: i64| {
        (now + jiff::SignedDuration::from_hours(h))
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let blackout = cli.run(&[
        "calendar",
        "add-blackout",
        "--from",
        &at(48),
        "--to",
        &at(60),
        "--reason",
        "year-end freeze",
    ]);
    assert_eq!(code(&blackout), 0);
    let start = cli.run(&[
        "rollout",
        "start",
        "riverflow",
        "--regions",
        &regions.join(","),
        "--bake",
        "20m",
        "--hold-after",
        "1",
    ]);
    assert_eq!(code(&start), 0);
    // The launch waits for its earliest start (GA - 7 days): move there.
    assert_eq!(code(&cli.run(&["clock", "advance", "13h"])), 0);

    // A viewer's certificate, its role taken by the running services.
    let certs = cli.dev_dir().join("certs");
    let issue = cli.run(&[
        "certs",
        "issue",
        "ann",
        "--role",
        "viewer",
        "--dir",
        &certs.display().to_string(),
    ]);
    assert_eq!(code(&issue), 0);
    let viewer = vec![
        ("TILEWAVE_TLS_CERT", certs.join("ann.crt").display().to_string()),
        ("TILEWAVE_TLS_KEY", certs.join("ann.key").display().to_string()),
        ("TILEWAVE_TLS_CA", certs.join("ca.crt").display().to_string()),
    ];

    let (engineer, url) = dashboard(&cli, &[]);
    let (_viewer, viewer_url) = dashboard(&cli, &viewer);
    let base = origin(&url);
    let rollout_page = format!("{base}/rollouts/riverflow");

    // Without the token: refused, whatever the path; a wrong token too.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/",
        "/rollouts/riverflow",
        "/rollouts/riverflow/events",
        "/assets/dashboard.js",
        "/?token=00",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
    }
    // The token once gives the cookie; the cookie opens the pages.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let r = http
        .get(&rollout_page)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A POST with the cookie but without the form's CSRF value, or from another origin: refused.
    let r = http
        .post(format!("{base}/rollouts/riverflow/pause"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("reason=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .post(format!("{base}/rollouts/riverflow/pause"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    let profile = dir.path().join("chromium-profile");
    let b = Browser::start(&chromium, &driver, &profile).await.unwrap();
    b.goto(&url).await.unwrap();
    b.goto(&rollout_page).await.unwrap();

    // One cell per planned region.
    let cells = b
        .js("return [...document.querySelectorAll('#grid .cell')].map(c => c.dataset.region).sort();")
        .await
        .unwrap();
    let mut planned = regions.clone();
    planned.sort();
    assert_eq!(cells, json!(planned), "one cell per planned region");
    // The Gantt chart draws the deadline (and GA) line.
    let lines = b
        .js("return [document.querySelectorAll('svg.gantt .deadline line').length, document.querySelectorAll('svg.gantt .ga line').length];")
        .await
        .unwrap();
    assert_eq!(lines, json!([1, 1]), "the deadline and GA lines");
    let shaded = b
        .js("return [...document.querySelectorAll('svg.gantt .blackout title')].map(t => t.textContent);")
        .await
        .unwrap();
    assert_eq!(
        shaded,
        json!(["blackout year-end freeze"]),
        "the calendar's blackout is shaded"
    );
    b.size(1280, 900).await.unwrap();
    b.screenshot(&shots.join("rollout-live-desktop.png"))
        .await
        .unwrap();

    // Cells change state live: no reload (the marker stays), updates arrive.
    b.js("window.stayed = true; return null;").await.unwrap();
    let states = || async {
        b.js("return window.stayed === true ? [...document.querySelectorAll('#grid .cell')].map(c => c.className).join(' ') : 'RELOADED';")
            .await
    };
    let first = states().await.unwrap();
    let first = first.as_str().unwrap_or_default().to_owned();
    eprintln!("cells at first: {first}");
    eventually(
        "a cell changes state without a reload",
        Duration::from_secs(60),
        || async {
            let now = states().await?;
            let now = now.as_str().unwrap_or_default().to_owned();
            anyhow::ensure!(now != "RELOADED", "the page was reloaded");
            anyhow::ensure!(now != first, "still {now}");
            Ok(())
        },
    )
    .await
    .unwrap();
    let updates = b.js("return window.tilewaveUpdates || 0;").await.unwrap();
    assert!(updates.as_u64().unwrap_or(0) >= 1, "updates arrived: {updates}");

    // The release engineer may pause (or, at the hold, approve): a button.
    let buttons = b
        .js("return [...document.querySelectorAll('#head .actions a.button')].map(a => a.textContent);")
        .await
        .unwrap();
    let labels = buttons.to_string();
    assert!(
        labels.contains("Pause") || labels.contains("Approve"),
        "the release engineer's buttons: {labels}"
    );

    // The viewer: no pause button, and its POST of the pause form is refused by the service.
    b.goto(&viewer_url).await.unwrap();
    b.goto(&format!("{}/rollouts/riverflow", origin(&viewer_url)))
        .await
        .unwrap();
    let viewer_buttons = b
        .js("return document.querySelectorAll('a.button.pause, a.button.resume, a.button.approve').length;")
        .await
        .unwrap();
    assert_eq!(viewer_buttons, json!(0), "no button for a viewer");
    let refused = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('meta[name=csrf]').content;
             fetch('/rollouts/riverflow/pause', {method: 'POST', body: new URLSearchParams({csrf, reason: 'viewer tries'})})
               .then(r => r.text().then(t => done([r.status, t])))
               .catch(e => done([0, String(e)]));",
        )
        .await
        .unwrap();
    assert_eq!(refused[0], json!(403), "{refused}");
    assert!(
        refused[1]
            .as_str()
            .unwrap_or_default()
            .contains("PermissionDenied"),
        "the service's refusal: {refused}"
    );
    let state = cli.run(&["rollout", "status", "riverflow", "-o", "json"]);
    let r: Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_ne!(
        r["paused_reason"], "viewer tries",
        "the viewer did not pause it: {r}"
    );

    // The launches page follows WatchTiles: a change to the tile reaches it
    // without a reload.
    b.goto(&url).await.unwrap();
    b.js("window.stayed = true; window.tilewaveUpdates = 0; return null;")
        .await
        .unwrap();
    let gtm = cli.run(&[
        "tile",
        "gtm",
        "riverflow",
        "set",
        "docs",
        "--done",
        "--owner",
        "bob",
        "--due",
        "2026-12-02",
        "--link",
        "https://riverflow.example/docs-v2",
    ]);
    assert_eq!(code(&gtm), 0);
    b.until(
        "the launches page updated in place",
        "return window.stayed === true && window.tilewaveUpdates >= 1;",
        Duration::from_secs(20),
    )
    .await
    .unwrap();

    // Screenshots of each page, desktop and phone.
    b.goto(&url).await.unwrap();
    for (name, path) in [
        ("launches", "/"),
        ("rollout", "/rollouts/riverflow"),
        ("tile", "/tiles/riverflow"),
        ("oncall", "/oncall"),
        ("credentials", "/credentials"),
    ] {
        for (label, w, h) in [("desktop", 1280, 900), ("phone", 390, 844)] {
            b.size(w, h).await.unwrap();
            b.goto(&format!("{base}{path}")).await.unwrap();
            b.screenshot(&shots.join(format!("{name}-{label}.png")))
                .await
                .unwrap();
        }
    }
    let phone = b
        .js("return [window.innerWidth, window.innerHeight];")
        .await
        .unwrap();
    assert_eq!(phone, json!([390, 844]), "the phone viewport");
    for path in ["/", "/rollouts/riverflow", "/tiles/riverflow"] {
        let r = http
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }

    // At the hold, the release engineer approves through the confirmation
    // page; wave 2's cell then changes live.
    b.size(1280, 900).await.unwrap();
    b.goto(&rollout_page).await.unwrap();
    b.until(
        "the hold after wave 1 offers Approve",
        "return document.querySelector('#head a.button.approve') !== null;",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    // The clock stops here: wave 2 applies at once and then bakes for
    // good, so the roll-out is still running when its service is killed
    // below (a roll-out that finished has a quiet feed and no banner).
    assert_eq!(code(&cli.run(&["clock", "rate", "0"])), 0);
    b.js("document.querySelector('#head a.button.approve').click(); return null;")
        .await
        .unwrap();
    b.until(
        "the confirmation page",
        "return location.pathname.endsWith('/confirm/approve') && document.querySelector('form button[type=submit]') !== null;",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    b.js("document.querySelector('form button[type=submit]').click(); return null;")
        .await
        .unwrap();
    b.until(
        "back on the roll-out page",
        "return location.pathname === '/rollouts/riverflow-r1' && document.querySelector('#grid') !== null;",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    b.js("window.stayed = true; return null;").await.unwrap();
    let wave2 = "return window.stayed === true ? document.querySelector('#grid .cell[data-wave=\"2\"]').className : 'RELOADED';";
    let before = b.js(wave2).await.unwrap();
    eprintln!("wave 2 after approving: {before}");
    // Wave 2 applies as soon as the approval commits, which may be before
    // the page above was rendered (it was: the owner got faster) or after;
    // either way its cell must leave "pending" and the page must not have
    // been reloaded for it. (Live changes without a reload are checked
    // above, at wave 1.)
    eventually(
        "wave 2's cell past pending on the page that stayed",
        Duration::from_secs(40),
        || async {
            let now = b.js(wave2).await?;
            anyhow::ensure!(now != json!("RELOADED"), "the page was reloaded");
            let class = now.as_str().unwrap_or_default();
            anyhow::ensure!(
                ["st-applying", "st-baking", "st-verified"]
                    .iter()
                    .any(|s| class.split(' ').any(|c| c == *s)),
                "still {now}"
            );
            Ok(())
        },
    )
    .await
    .unwrap();
    b.screenshot(&shots.join("rollout-wave2-desktop.png"))
        .await
        .unwrap();

    // The rollout service goes away: the dashboard's watch drops and the
    // page shows the banner rather than passing the figures off as live.
    let pid: i32 = std::fs::read_to_string(cli.dev_dir().join("rollout.pid"))
        .expect("the rollout service's pid file")
        .trim()
        .parse()
        .expect("a pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
        .expect("stopping the rollout service the test's stack started");
    b.until(
        "the reconnecting banner after the watch dropped",
        // Whatever status the broken stream ends with (UNAVAILABLE,
        // or UNKNOWN "transport error" when the connection is cut).
        "const b = document.getElementById('banner'); return !b.hidden && b.textContent.startsWith('reconnecting') && !b.textContent.includes('live feed stopped');",
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    b.screenshot(&shots.join("rollout-reconnecting-desktop.png"))
        .await
        .unwrap();

    // The dashboard itself goes away: the browser's stream fails, the banner says so.
    drop(engineer);
    b.until(
        "the banner after the dashboard went away",
        "const b = document.getElementById('banner'); return !b.hidden && b.textContent.includes('does not answer');",
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    b.close().await;
    let saved: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(saved.len(), 13, "{saved:?}");
    eprintln!("screenshots in {}", shots.display());
    let status = stdout(&cli.run(&["rollout", "status", "riverflow"]));
    eprintln!("{status}");
}
