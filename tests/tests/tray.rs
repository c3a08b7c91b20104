//! Smoke test of the real `orgsync-tray` binary on a desktop: a virtual X display (Xvfb), a tray
//! host (trayer, an XEmbed system tray), a private D-Bus session bus with a real notification
//! daemon (dunst) and a bus monitor that records every `Notify` call, plus the real `orgsyncd`,
//! a private slapd and the emulated organization server.
//!
//! It checks what a user would: the icon appears in the tray and its colour follows the state, a
//! sync started through the API pops up a desktop notification with the counts, the menu opens
//! and its items work (Stop Sync is chosen with the keyboard, as `xdotool` types it), and Quit
//! ends the tray (exit code 0) while the daemon keeps running. A screenshot with the menu open
//! and the notification showing is kept as `tests/artifacts/tray-smoke.png`.
//!
//! The tray's logic is tested without a display in `tray/` (unit tests and `with_daemon.rs`);
//! this test is about the shell and the desktop integration. The packages come from
//! `scripts/setup.sh`; every process is stopped when the test ends, also when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use testkit::cli::{Installation, binary};
use testkit::daemon::Daemon;
use testkit::orgserver::OrgServer;
use testkit::ports::{ServerProcess, log_tail, run_command, show_command};
use testkit::slapd::Slapd;

/// Longest wait for anything on the desktop; a healthy run needs a fraction of it.
const WAIT: Duration = Duration::from_secs(30);

/// How long a short-lived tool (xdotool, dbus-send, import) may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// The icon window's class on an XEmbed tray: tray-icon names the appindicator
/// `tray-icon tray app <id>`, and orgsync-tray's id is `orgsync`.
const ICON_CLASS: &str = "^tray-icon tray app orgsync$";

/// dunst's settings for the test: bubbles at the top left, away from the tray and its menu at
/// the top right, so the screenshot shows both; and they stay long enough to be photographed on
/// a slow machine.
const DUNSTRC: &str = "[global]
    origin = top-left
    offset = 10x60
    width = 420
[urgency_low]
    timeout = 120
[urgency_normal]
    timeout = 120
[urgency_critical]
    timeout = 0
";

/// A private desktop session. Fields drop in order: the clients first, then the bus and the X
/// server, the directory (sockets, logs) last.
struct Desktop {
    _monitor: ServerProcess,
    _dunst: ServerProcess,
    _trayer: ServerProcess,
    _bus: ServerProcess,
    _xvfb: ServerProcess,
    session: Session,
    /// The bus monitor's log: every Notify call, with its arguments.
    monitor_log: PathBuf,
    _dir: TempDir,
}

impl std::ops::Deref for Desktop {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Desktop {
    fn start() -> Desktop {
        let mut dir = tempfile::Builder::new()
            .prefix("orgsync-desktop-")
            .tempdir()
            .expect("a temp dir for the desktop session");
        testkit::ports::keep_if_asked(&mut dir, "desktop");
        let path = dir.path().to_path_buf();
        for sub in ["home/.config/dunst", "runtime"] {
            std::fs::create_dir_all(path.join(sub)).expect("create a desktop directory");
        }
        std::fs::write(path.join("home/.config/dunst/dunstrc"), DUNSTRC).expect("write dunstrc");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path.join("runtime"), std::fs::Permissions::from_mode(0o700))
            .expect("XDG_RUNTIME_DIR must be private");

        // Xvfb picks a free display itself and writes its number to fd 3 (-displayfd), so
        // parallel tests and other sessions on the machine never collide. -noreset: by default
        // the server resets when its last client leaves, and a client connecting in that moment
        // (trayer, right after the readiness probe disconnects) is dropped with "cannot open
        // display".
        let display_file = path.join("display");
        let mut xvfb_cmd = Command::new("sh");
        xvfb_cmd.args([
            "-c",
            r#"exec Xvfb -displayfd 3 -screen 0 1024x600x24 -nolisten tcp -noreset 3>"$1""#,
            "xvfb",
        ]);
        xvfb_cmd.arg(&display_file);
        let xvfb = spawn("Xvfb", xvfb_cmd, &path);
        let display = wait_for(
            "a display number from Xvfb",
            || xvfb.log_tail(20),
            || {
                let text = std::fs::read_to_string(&display_file).ok()?;
                text.ends_with('\n').then(|| format!(":{}", text.trim()))
            },
        );

        let bus_address = format!("unix:path={}", path.join("bus").display());
        let mut bus_cmd = Command::new("dbus-daemon");
        bus_cmd.args(["--session", "--nofork", "--nopidfile"]);
        bus_cmd.arg(format!("--address={bus_address}"));
        let bus = spawn("dbus-daemon", bus_cmd, &path);

        let session = Session {
            display,
            bus_address,
            dir: path.clone(),
        };
        session.wait_ready("the X server", &xvfb, || {
            session.try_run("xdpyinfo", &[]).status.success()
        });
        session.wait_ready("the session bus", &bus, || {
            session
                .try_run(
                    "dbus-send",
                    &[
                        "--session",
                        "--print-reply",
                        "--dest=org.freedesktop.DBus",
                        "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.ListNames",
                    ],
                )
                .status
                .success()
        });

        let trayer = spawn(
            "trayer",
            session.command_with_args(
                "trayer",
                &[
                    "--edge",
                    "top",
                    "--align",
                    "right",
                    "--widthtype",
                    "pixel",
                    "--width",
                    "200",
                    "--heighttype",
                    "pixel",
                    "--height",
                    "40",
                    "--transparent",
                    "false",
                    "--SetDockType",
                    "true",
                ],
            ),
            &path,
        );
        let monitor = spawn(
            "dbus-monitor",
            session.command_with_args(
                "dbus-monitor",
                &[
                    "--session",
                    "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
                ],
            ),
            &path,
        );
        let dunst = spawn("dunst", session.command("dunst"), &path);
        // trayer's panel window has the instance name "panel".
        // trayer exits if it cannot reach the display: quote the X server's log too.
        wait_for(
            "trayer's panel",
            || format!("{}{}", trayer.log_tail(20), xvfb.log_tail(20)),
            || session.window("^panel$"),
        );
        session.wait_ready("dunst on the bus", &dunst, || {
            let out = session.try_run(
                "dbus-send",
                &[
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ],
            );
            String::from_utf8_lossy(&out.stdout).contains("boolean true")
        });
        let monitor_log = monitor.log().to_path_buf();
        session.wait_ready("dbus-monitor", &monitor, || {
            std::fs::read_to_string(&monitor_log).is_ok_and(|log| log.contains("NameAcquired"))
        });
        Desktop {
            _monitor: monitor,
            _dunst: dunst,
            _trayer: trayer,
            _bus: bus,
            _xvfb: xvfb,
            session,
            monitor_log,
            _dir: dir,
        }
    }

    /// Every Notify call the bus monitor saw so far.
    fn notify_log(&self) -> String {
        std::fs::read_to_string(&self.monitor_log).unwrap_or_default()
    }
}

/// How to reach the session: its display, its bus, its directory.
struct Session {
    display: String,
    bus_address: String,
    dir: PathBuf,
}

impl Session {
    fn path(&self) -> &Path {
        &self.dir
    }

    /// `program` in this session with a clean environment: the display, the bus, a private HOME
    /// and runtime directory, and PATH.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path().join("home"));
        self.session_env(&mut command);
        command
    }

    fn command_with_args(&self, program: &str, args: &[&str]) -> Command {
        let mut command = self.command(program);
        command.args(args);
        command
    }

    /// Adds the session to a command that has its own environment otherwise (the tray's comes
    /// from its orgsync installation).
    fn session_env(&self, command: &mut Command) {
        command
            .env_remove("WAYLAND_DISPLAY")
            .env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .env("XDG_RUNTIME_DIR", self.path().join("runtime"))
            // No accessibility bus in this session; without this GTK complains on stderr.
            .env("NO_AT_BRIDGE", "1");
    }

    fn try_run(&self, program: &str, args: &[&str]) -> std::process::Output {
        run_command(
            &mut self.command_with_args(program, args),
            None,
            TOOL_TIMEOUT,
        )
    }

    /// Runs a tool that must succeed; returns its stdout.
    #[track_caller]
    fn run(&self, program: &str, args: &[&str]) -> String {
        let mut command = self.command_with_args(program, args);
        let shown = show_command(&command);
        let out = run_command(&mut command, None, TOOL_TIMEOUT);
        assert!(
            out.status.success(),
            "`{shown}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for `ready`; on a timeout the panic quotes `process`'s log.
    #[track_caller]
    fn wait_ready(&self, what: &str, process: &ServerProcess, ready: impl FnMut() -> bool) {
        assert!(
            testkit::ports::wait_until(WAIT, ready),
            "{what} did not come up within {WAIT:?}\n{}",
            process.log_tail(20),
        );
    }

    /// The first visible window whose instance name matches `pattern` (xdotool's regex).
    fn window(&self, pattern: &str) -> Option<String> {
        let out = self.try_run(
            "xdotool",
            &["search", "--onlyvisible", "--classname", pattern],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string)
    }

    /// The geometry of every visible window whose instance name matches `pattern`.
    fn windows(&self, pattern: &str) -> Vec<Geometry> {
        let out = self.try_run(
            "xdotool",
            &["search", "--onlyvisible", "--classname", pattern],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|id| self.geometry(id))
            .collect()
    }

    fn geometry(&self, window: &str) -> Option<Geometry> {
        let out = self.try_run("xdotool", &["getwindowgeometry", "--shell", window]);
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |key: &str| -> Option<i32> {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.trim().parse().ok())
        };
        Some(Geometry {
            x: value("X")?,
            y: value("Y")?,
            width: value("WIDTH")?,
            height: value("HEIGHT")?,
        })
    }

    fn click(&self, at: &Geometry) {
        let (x, y) = at.centre();
        self.run(
            "xdotool",
            &["mousemove", &x.to_string(), &y.to_string(), "click", "1"],
        );
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["key", "--delay", "80"];
        args.extend_from_slice(keys);
        self.run("xdotool", &args);
    }

    fn screenshot(&self, to: &Path) {
        self.run("import", &["-window", "root", &to.display().to_string()]);
    }

    /// The mean colour of a rectangle of the screen, as RGB 0–255.
    fn mean_colour(&self, area: &Geometry) -> [f32; 3] {
        let shot = self.path().join("colour.png");
        self.screenshot(&shot);
        let crop = format!("{}x{}+{}+{}", area.width, area.height, area.x, area.y);
        let text = self.run(
            "convert",
            &[
                &shot.display().to_string(),
                "-crop",
                &crop,
                "+repage",
                "-scale",
                "1x1!",
                "-format",
                "%[fx:int(255*r)],%[fx:int(255*g)],%[fx:int(255*b)]",
                "info:",
            ],
        );
        let parts: Vec<f32> = text
            .trim()
            .split(',')
            .filter_map(|v| v.parse().ok())
            .collect();
        assert_eq!(parts.len(), 3, "convert answered {text:?}");
        [parts[0], parts[1], parts[2]]
    }
}

#[derive(Clone, Copy, Debug)]
struct Geometry {
    x: i32,
    y: i32,
    width: i32,
    height: i32,
}

impl Geometry {
    fn centre(&self) -> (i32, i32) {
        (self.x + self.width / 2, self.y + self.height / 2)
    }
}

#[track_caller]
fn spawn(name: &str, command: Command, dir: &Path) -> ServerProcess {
    let log = dir.join(format!("{name}.log"));
    let shown = show_command(&command);
    ServerProcess::spawn(name, command, &log, dir).unwrap_or_else(|e| {
        panic!(
            "cannot start {name} (`{shown}`): {e}; install the desktop test packages with scripts/setup.sh"
        )
    })
}

/// Polls `ready` until it gives a value; on a timeout the panic adds `context()` (a log tail).
#[track_caller]
fn wait_for<T>(
    what: &str,
    context: impl Fn() -> String,
    mut ready: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {WAIT:?}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&dir).expect("create tests/artifacts");
    dir
}

/// The installation: alice, bob, carol, dave (engineering = alice, bob), the organization
/// server, logged in, daemon on a free port.
async fn installation() -> (Slapd, OrgServer, Installation) {
    testkit::fixture::company(&["alice", "bob", "carol", "dave"]).await
}

/// Opens the tray's menu by clicking the icon (retrying: the first click can come before GTK
/// is ready) and returns the menu's window.
fn open_menu(desktop: &Desktop, icon: &Geometry) -> Geometry {
    for _ in 0..5 {
        desktop.click(icon);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            // The menu is a popup window of the tray process, much taller than the icon.
            if let Some(menu) = desktop
                .windows("^orgsync-tray$")
                .into_iter()
                .find(|w| w.height > 100)
            {
                // Let GTK take the keyboard grab before anyone types.
                std::thread::sleep(Duration::from_millis(300));
                return menu;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("the tray's menu did not open after 5 clicks on the icon at {icon:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_tray_shows_its_icon_notifies_a_sync_and_its_menu_works() {
    let started = Instant::now();
    let desktop = Desktop::start();
    let desktop_ready = started.elapsed();
    let (_slapd, server, inst) = installation().await;
    let daemon = Daemon::start(&inst);

    let mut tray_cmd = inst.command(binary("orgsync-tray"));
    desktop.session_env(&mut tray_cmd);
    tray_cmd.arg("-v");
    let mut tray = spawn("orgsync-tray", tray_cmd, desktop.path());
    let tray_log = tray.log().to_path_buf();
    let tray_tail = || log_tail(&tray_log, 30);
    let with_bus = || {
        format!(
            "{}\n--- Notify calls ---\n{}",
            tray_tail(),
            desktop.notify_log()
        )
    };

    // The icon appears in the tray, and the tray finds the daemon.
    let icon = wait_for("tray icon", tray_tail, || {
        if let Some(status) = tray.exited() {
            panic!("orgsync-tray exited with {status}\n{}", tray.log_tail(40));
        }
        let window = desktop.window(ICON_CLASS)?;
        desktop
            .geometry(&window)
            .filter(|g| g.width > 0 && g.height > 0)
    });
    assert!(
        icon.x >= 1024 - 200 && icon.y < 40,
        "the icon is not in trayer's panel (top right): {icon:?}"
    );
    wait_for("connection to the daemon", tray_tail, || {
        std::fs::read_to_string(&tray_log)
            .ok()?
            .contains("connected to orgsyncd")
            .then_some(())
    });
    let icon_shown = started.elapsed();

    // A sync started through the API (as the CLI or the schedule would) is announced on the
    // desktop: the Notify call is on the bus, and dunst shows it.
    let sync_started = Instant::now();
    daemon
        .client()
        .start_sync(false)
        .await
        .expect("start a sync through the API");
    wait_for("sync notification on the bus", with_bus, || {
        let log = desktop.notify_log();
        (log.contains("string \"orgsync: sync done\"") && log.contains("4 invited")).then_some(())
    });
    let notified_after = sync_started.elapsed();
    let log = desktop.notify_log();
    assert!(log.contains("string \"orgsync\""), "the app name: {log}");
    assert!(
        log.contains("4 invited, 1 group(s) created."),
        "the counts: {log}"
    );
    wait_for("dunst showing the notification", with_bus, || {
        let out = desktop.try_run("dunstctl", &["count", "displayed"]);
        let count: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        (count >= 1).then_some(())
    });
    assert_eq!(server.managed_emails().len(), 4);

    // The icon is the "ok" check mark: green.
    let [r, g, b] = wait_for("the green ok icon", tray_tail, || {
        let c = desktop.mean_colour(&icon);
        (c[1] > c[0] + 15.0 && c[1] > c[2] + 15.0).then_some(c)
    });
    eprintln!("ok icon mean colour: {r} {g} {b}");

    // The menu opens; the screenshot shows it with the notification.
    let menu = open_menu(&desktop, &icon);
    let screenshot = artifacts_dir().join("tray-smoke.png");
    desktop.screenshot(&screenshot);
    let size = std::fs::metadata(&screenshot)
        .expect("the screenshot was written")
        .len();
    assert!(size > 1000, "{} is only {size} bytes", screenshot.display());
    eprintln!(
        "screenshot with the menu ({menu:?}) and the notification: {}",
        screenshot.display()
    );

    // Keyboard: the status lines are disabled, so Down goes to Test Now, Sync Now, Stop Sync.
    desktop.keys(&["Down", "Down", "Down", "Return"]);
    let client = daemon.client();
    let deadline = Instant::now() + WAIT;
    loop {
        let status = client.status().await.expect("daemon status");
        if !status.polling {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Stop Sync from the menu did not stop polling\n{}",
            tray.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the icon follows: the slate "paused" icon is no longer green.
    wait_for("the polling-stopped icon", tray_tail, || {
        let c = desktop.mean_colour(&icon);
        (c[2] > c[1] && c[1] > c[0]).then_some(())
    });

    // Quit (the last item: Up from the top wraps to it) ends the tray, not the daemon.
    open_menu(&desktop, &icon);
    desktop.keys(&["Up", "Return"]);
    let status = wait_for("the tray to exit after Quit", tray_tail, || tray.exited());
    assert!(
        status.success(),
        "orgsync-tray exited with {status}\n{}",
        tray.log_tail(30)
    );
    assert!(
        desktop.window(ICON_CLASS).is_none(),
        "the icon is still in the tray after Quit"
    );
    let status = client.status().await.expect("the daemon still answers");
    assert!(!status.polling);
    let log = std::fs::read_to_string(tray.log()).unwrap_or_default();
    assert!(
        log.contains("orgsync-tray stopped; orgsyncd keeps running"),
        "{log}"
    );

    eprintln!(
        "timings: desktop {desktop_ready:?}, icon shown and connected at {icon_shown:?}, notification {notified_after:?} after the sync started, total {:?}",
        started.elapsed()
    );
    drop(daemon);
}

/// The XDG autostart entry starts the binary this workspace builds, and is a well-formed
/// desktop entry (desktop-file-validate is not installed on CI; these are its rules that matter
/// here).
#[test]
fn the_autostart_entry_starts_the_tray() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/autostart/orgsync-tray.desktop");
    let text = std::fs::read_to_string(&path).expect("packaging/autostart/orgsync-tray.desktop");
    let mut group = None;
    let mut keys = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            group = Some(name.to_string());
            continue;
        }
        assert_eq!(
            group.as_deref(),
            Some("Desktop Entry"),
            "a key outside [Desktop Entry]: {line}"
        );
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        assert!(
            keys.insert(key.to_string(), value.to_string()).is_none(),
            "{key} twice"
        );
    }
    assert_eq!(keys.get("Type").map(String::as_str), Some("Application"));
    assert!(keys.contains_key("Name"));
    let exec = keys.get("Exec").expect("Exec");
    let program = exec.split_whitespace().next().expect("a program in Exec");
    assert_eq!(program, "orgsync-tray");
    assert_eq!(keys.get("TryExec").map(String::as_str), Some(program));
    assert!(binary(program).is_file());
    assert_eq!(keys.get("Terminal").map(String::as_str), Some("false"));
}
