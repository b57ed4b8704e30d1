//! A real browser for the hosted pages: Debian's `chromium`, headless, driven through its `chromedriver` over WebDriver (fantoccini), one fresh profile per test, and a screenshot of each page under `target/screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(20);

/// A headless chromium for one test. Its chromedriver is killed when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    test: String,
    shots: usize,
}

/// Where screenshots go: `<target dir>/screenshots` (the test binary lives in `<target>/<profile>/deps`).
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("screenshots")
}

impl Browser {
    /// Start chromedriver on a free port and open a browser session (a missing chromium or
    /// chromedriver fails the test: `.ci/run` installs them).
    pub async fn start(test: &str) -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: apt-get install chromium chromium-driver (see README)"
            );
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1000,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        let caps = caps.as_object().unwrap().clone();
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("open a chromium session");
        std::fs::create_dir_all(screenshot_dir()).unwrap();
        Browser {
            client,
            driver,
            _profile: profile,
            test: test.to_string(),
            shots: 0,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The element `css` selects, once the page shows it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(found) => found,
            Err(e) => panic!("{css} never showed on {}: {e}", self.url().await),
        }
    }

    /// Type `text` into the field `css` selects (emptied first).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Click what `css` selects.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Click what `css` selects and wait until the next page shows `then`.
    pub async fn submit(&self, css: &str, then: &str) {
        self.click(css).await;
        self.find(then).await;
    }

    /// The visible text of what `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    /// Wait until the address contains `part` (after a form that re-renders the same page).
    pub async fn wait_for_url(&self, part: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.url().await.as_str().contains(part) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the address never contained {part}: {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's path (without the query).
    pub async fn path(&self) -> String {
        self.url().await.path().to_string()
    }

    /// The page's HTML as the browser has it.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Save a screenshot of the page as `target/screenshots/<test>-<n>-<label>.png`.
    pub async fn shot(&mut self, label: &str) {
        self.shots += 1;
        let png = self.client.screenshot().await.unwrap();
        let path = screenshot_dir().join(format!("{}-{:02}-{label}.png", self.test, self.shots));
        std::fs::write(&path, png).unwrap();
    }

    /// Resize the window (a phone is 390 × 844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}
