//! A small Chrome DevTools Protocol client for the browser tests: starts headless
//! Chromium on a fresh profile with `--remote-debugging-port=0`, reads the port from
//! the profile's `DevToolsActivePort`, and drives pages over one WebSocket (flattened
//! target sessions): navigate, evaluate JavaScript, type and press keys, emulate a
//! time zone, take screenshots.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TIMEOUT, wait_for};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A running headless Chromium.
pub(super) struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: AtomicU64,
}

/// The Chromium binary: `$CHROMIUM` or Debian's `/usr/bin/chromium`.
fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Where screenshots go: `<target>/screenshots/`.
pub(super) fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

impl Browser {
    pub(super) async fn launch() -> Self {
        let bin = chromium();
        assert!(
            bin.exists(),
            "{} is missing: install Debian's chromium (./scripts/test does)",
            bin.display()
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let stderr = std::fs::File::create(profile.path().join("stderr.log")).expect("stderr");
        let child = tokio::process::Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1100,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let port_file = profile.path().join("DevToolsActivePort");
        let ws_url = wait_for("chromium's DevToolsActivePort", || {
            let port_file = port_file.clone();
            async move {
                let text = std::fs::read_to_string(port_file).ok()?;
                let mut lines = text.lines();
                let port = lines.next()?.trim().to_string();
                let path = lines.next()?.trim().to_string();
                (!port.is_empty() && path.starts_with('/'))
                    .then(|| format!("ws://127.0.0.1:{port}{path}"))
            }
        })
        .await;
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connect to chromium");
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let readers = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if let Some(id) = value.get("id").and_then(Value::as_u64) {
                    let tx = readers.lock().unwrap().remove(&id);
                    if let Some(tx) = tx {
                        let _ = tx.send(value);
                    }
                }
            }
        });
        Self {
            _child: child,
            _profile: profile,
            out,
            pending,
            next_id: AtomicU64::new(1),
        }
    }

    /// Sends one command (to a page when `session` is given) and returns its result.
    pub(super) async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params).await {
            Ok(result) => result,
            Err(answer) => panic!("{method}: {answer}"),
        }
    }

    /// As [`Browser::call`], with the browser's error answer as an `Err`.
    pub(super) async fn try_call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        self.out.send(msg.to_string()).expect("websocket writer");
        let answer = tokio::time::timeout(TIMEOUT, rx)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method}"))
            .expect("answer");
        if answer.get("error").is_some() {
            return Err(answer);
        }
        Ok(answer["result"].clone())
    }

    /// A new tab, attached.
    pub(super) async fn page(&self) -> Page<'_> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        let page = Page {
            browser: self,
            session: attached["sessionId"].as_str().expect("session").to_string(),
        };
        page.call("Page.enable", json!({})).await;
        page.viewport(1100, 900).await;
        page
    }
}

/// One tab.
pub(super) struct Page<'a> {
    browser: &'a Browser,
    session: String,
}

impl Page<'_> {
    pub(super) async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Sets the viewport (CSS pixels).
    pub(super) async fn viewport(&self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await;
    }

    /// Light or dark `prefers-color-scheme`.
    pub(super) async fn color_scheme(&self, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
    }

    /// Runs the page's JavaScript in the IANA time zone `zone` (set before navigating).
    pub(super) async fn timezone(&self, zone: &str) {
        self.call(
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": zone }),
        )
        .await;
    }

    /// Opens `url` and waits until the document has loaded.
    pub(super) async fn goto(&self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_loaded().await;
    }

    /// Waits until the current document (after a navigation or a form post) is
    /// complete.
    pub(super) async fn wait_loaded(&self) {
        self.wait("the page to load", "document.readyState === 'complete'")
            .await;
    }

    /// Evaluates `expr` in the page (promises awaited) and returns its value.
    pub(super) async fn eval(&self, expr: &str) -> Value {
        let res = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(
            res.get("exceptionDetails").is_none(),
            "{expr}: {}",
            res["exceptionDetails"]
        );
        res["result"]["value"].clone()
    }

    /// Waits until `expr` is truthy in the page.
    pub(super) async fn wait(&self, what: &str, expr: &str) {
        let wrapped =
            format!("(() => {{ try {{ return !!({expr}); }} catch (e) {{ return false; }} }})()");
        wait_for(what, || async {
            // An evaluation that meets a navigation (after a click that submits a
            // form) is answered with an error: the page is not there yet, try again.
            let res = self
                .browser
                .try_call(
                    Some(&self.session),
                    "Runtime.evaluate",
                    json!({ "expression": wrapped, "returnByValue": true }),
                )
                .await
                .ok()?;
            (res["result"]["value"] == json!(true)).then_some(())
        })
        .await;
    }

    /// The text of the first element matching `selector` (empty when none).
    pub(super) async fn text(&self, selector: &str) -> String {
        let expr = format!(
            "(document.querySelector({}) || {{}}).textContent || ''",
            json!(selector)
        );
        self.eval(&expr)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clicks the first element matching `selector`.
    pub(super) async fn click(&self, selector: &str) {
        let expr = format!("document.querySelector({}).click()", json!(selector));
        self.eval(&expr).await;
    }

    /// Sets an input's value.
    pub(super) async fn fill(&self, selector: &str, value: &str) {
        let expr = format!(
            "document.querySelector({}).value = {}",
            json!(selector),
            json!(value)
        );
        self.eval(&expr).await;
    }

    /// Focuses `selector` and types `text` at the end of its value, as a keyboard user
    /// would (the page sees `input` events).
    pub(super) async fn type_text(&self, selector: &str, text: &str) {
        let expr = format!(
            "(e => {{ e.focus(); e.setSelectionRange(e.value.length, e.value.length); }})(document.querySelector({}))",
            json!(selector)
        );
        self.eval(&expr).await;
        for c in text.chars() {
            self.call("Input.insertText", json!({ "text": c.to_string() }))
                .await;
        }
    }

    /// Empties the input `selector` (focused) as select-all and Backspace would.
    pub(super) async fn clear_input(&self, selector: &str) {
        let expr = format!(
            "(e => {{ e.focus(); e.select(); }})(document.querySelector({}))",
            json!(selector)
        );
        self.eval(&expr).await;
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": kind, "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8 }),
            )
            .await;
        }
    }

    /// Focuses `selector` and presses Enter, as a keyboard user would.
    pub(super) async fn press_enter_on(&self, selector: &str) {
        let expr = format!("document.querySelector({}).focus()", json!(selector));
        self.eval(&expr).await;
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": if kind == "keyDown" { "\r" } else { "" } }),
            )
            .await;
        }
    }

    /// Saves a PNG of the whole page as `<target>/screenshots/<name>.png`.
    pub(super) async fn screenshot(&self, name: &str) {
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let clip = json!({
            "x": 0,
            "y": 0,
            "width": size["width"].as_f64().unwrap_or(1100.0),
            "height": size["height"].as_f64().unwrap_or(900.0).min(5000.0),
            "scale": 1,
        });
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true, "clip": clip }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("png data"))
            .expect("base64");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}
