//! The GUI shell: a tao event loop with a tray-icon icon and menu. It renders the controller's
//! views and forwards clicks, nothing more; every decision is in the library.
//!
//! Threads: GTK wants the main thread, so the event loop runs here and the controller runs on a
//! tokio runtime on a second thread. Views reach the event loop through an `EventLoopProxy`
//! (which wakes it), clicks go back through a tokio channel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use orgsync_proto::paths::Paths;
use orgsync_tray::actions;
use orgsync_tray::controller::{Command, Controller, Timing, Update, desktop_notes};
use orgsync_tray::icons;
use orgsync_tray::model::{MenuId, STATUS_LINES, TrayState, View};
use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder};
use tao::platform::run_return::EventLoopExtRunReturn;
use tokio::sync::mpsc;
use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

/// The appindicator id; on an XEmbed tray the icon's window class is `tray-icon tray app <id>`,
/// which is how tests (and window-manager rules) find it.
const TRAY_ID: &str = "orgsync";

#[derive(Debug)]
enum UserEvent {
    Update(Update),
    Menu(MenuEvent),
    /// SIGTERM / SIGINT: leave like Quit, so the icon is removed and temp files deleted.
    Signal,
}

pub fn run(installation: Paths) -> ExitCode {
    let scratch = match scratch_dir() {
        Ok(dir) => dir,
        Err(e) => {
            tracing::error!("cannot create a private temporary directory: {e}");
            return ExitCode::from(1);
        }
    };
    let code = run_in(installation, &scratch);
    if let Err(e) = std::fs::remove_dir_all(&scratch) {
        tracing::debug!("cannot remove {}: {e}", scratch.display());
    }
    code
}

fn run_in(installation: Paths, scratch: &Path) -> ExitCode {
    // tao panics when GTK cannot start (e.g. the display refuses us); say it in our words too.
    let built =
        std::panic::catch_unwind(|| EventLoopBuilder::<UserEvent>::with_user_event().build());
    let Ok(mut event_loop) = built else {
        tracing::error!("cannot open the display; orgsync-tray needs a desktop session (GTK 3)");
        return ExitCode::from(1);
    };

    let proxy = event_loop.create_proxy();
    MenuEvent::set_event_handler(Some(move |event| {
        let _ = proxy.send_event(UserEvent::Menu(event));
    }));

    let (commands, command_rx) = mpsc::unbounded_channel();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let context = actions::Context {
        report_file: scratch.join("last-report.txt"),
        config_file: installation.config_file.clone(),
        opener: actions::xdg_open(),
    };
    let ui_proxy = event_loop.create_proxy();
    let signal_proxy = event_loop.create_proxy();
    let controller = Controller::new(
        installation.data_dir.clone(),
        context,
        Box::new(move |update| ui_proxy.send_event(UserEvent::Update(update)).is_ok()),
        desktop_notes(),
        Timing::default(),
    );
    // Not joined at exit: leaving main ends the process, and with it any request in flight.
    let _controller = std::thread::Builder::new()
        .name("orgsync-tray-controller".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    _ = controller.run(command_rx) => {}
                    _ = termination() => {
                        let _ = signal_proxy.send_event(UserEvent::Signal);
                    }
                }
            })
        });

    let icon_dir = scratch.join("icons");
    let mut tray: Option<Tray> = None;
    let mut pending: Option<View> = None;
    let mut exit = ExitCode::SUCCESS;
    event_loop.run_return(|event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        match event {
            Event::NewEvents(StartCause::Init) => {
                match Tray::new(&icon_dir, pending.take().as_ref()) {
                    Ok(created) => tray = Some(created),
                    Err(e) => {
                        tracing::error!("{e}");
                        exit = ExitCode::from(1);
                        *control_flow = ControlFlow::Exit;
                    }
                }
            }
            Event::UserEvent(UserEvent::Update(Update::View(view))) => match tray.as_mut() {
                Some(tray) => tray.render(&view),
                None => pending = Some(view),
            },
            Event::UserEvent(UserEvent::Update(Update::Quit))
            | Event::UserEvent(UserEvent::Signal) => {
                *control_flow = ControlFlow::Exit;
            }
            Event::UserEvent(UserEvent::Menu(event)) => match MenuId::parse(&event.id.0) {
                // Quit at once, even if the controller is busy.
                Some(MenuId::Quit) => *control_flow = ControlFlow::Exit,
                Some(id) => {
                    let _ = commands.send(Command::Click(id));
                }
                None => {} // a status line
            },
            _ => {}
        }
    });
    let _ = commands.send(Command::Shutdown);
    drop(tray); // removes the icon
    tracing::info!("orgsync-tray stopped; orgsyncd keeps running");
    exit
}

/// A directory only this process uses, for the icon images tray-icon writes and the report.
/// Under `$XDG_RUNTIME_DIR` (per user, tmpfs) when there is one.
fn scratch_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("orgsync-tray-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    Ok(dir)
}

async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT; they will end the tray abruptly");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The icon and its menu. Built once; views only change texts, enabled flags and the image.
struct Tray {
    icon: TrayIcon,
    status: Vec<MenuItem>,
    items: HashMap<MenuId, MenuItem>,
    shown_state: Option<TrayState>,
    shown: Option<View>,
}

impl Tray {
    fn new(icon_dir: &Path, first: Option<&View>) -> Result<Tray, String> {
        let menu = Menu::new();
        let status: Vec<MenuItem> = (0..STATUS_LINES)
            .map(|i| {
                let text = if i == 0 { "orgsync" } else { "" };
                MenuItem::with_id(format!("status-{i}"), text, false, None)
            })
            .collect();
        let items: HashMap<MenuId, MenuItem> = MenuId::ALL
            .into_iter()
            .map(|id| (id, MenuItem::with_id(id.as_str(), id.as_str(), false, None)))
            .collect();
        let separator = PredefinedMenuItem::separator;
        let append = |item: &dyn tray_icon::menu::IsMenuItem| {
            menu.append(item)
                .map_err(|e| format!("cannot build the tray menu: {e}"))
        };
        for line in &status {
            append(line)?;
        }
        append(&separator())?;
        for id in [MenuId::TestNow, MenuId::SyncNow, MenuId::TogglePolling] {
            append(&items[&id])?;
        }
        append(&separator())?;
        for id in [
            MenuId::ClearCache,
            MenuId::OpenConfig,
            MenuId::ShowLastReport,
        ] {
            append(&items[&id])?;
        }
        append(&separator())?;
        append(&items[&MenuId::Quit])?;

        let state = first.map_or(TrayState::Unreachable, |view| view.state);
        let builder = TrayIconBuilder::new()
            .with_id(TRAY_ID)
            .with_menu(Box::new(menu))
            .with_icon(icon(state)?)
            .with_tooltip("orgsync")
            .with_temp_dir_path(icon_dir);
        // tray-icon panics when libayatana-appindicator3 cannot be loaded.
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.build()));
        let icon = match built {
            Ok(Ok(icon)) => icon,
            Ok(Err(e)) => return Err(format!("cannot create the tray icon: {e}")),
            Err(_) => {
                return Err(
                    "cannot create the tray icon: install libayatana-appindicator3-1 (Debian/Ubuntu) or libappindicator-gtk3"
                        .into(),
                );
            }
        };
        let mut tray = Tray {
            icon,
            status,
            items,
            shown_state: Some(state),
            shown: None,
        };
        if let Some(view) = first {
            tray.render(view);
        }
        Ok(tray)
    }

    fn render(&mut self, view: &View) {
        if self.shown_state != Some(view.state) {
            match icon(view.state) {
                Ok(image) => {
                    if let Err(e) = self.icon.set_icon(Some(image)) {
                        tracing::warn!("cannot change the tray icon: {e}");
                    }
                }
                Err(e) => tracing::warn!("{e}"),
            }
            self.shown_state = Some(view.state);
        }
        let old = self.shown.take();
        for (i, line) in view.status.iter().enumerate() {
            if old.as_ref().is_none_or(|old| &old.status[i] != line)
                && let Some(item) = self.status.get(i)
            {
                item.set_text(line);
            }
        }
        for item in &view.items {
            if old
                .as_ref()
                .is_some_and(|old| old.items.iter().any(|o| o == item))
            {
                continue;
            }
            if let Some(menu_item) = self.items.get(&item.id) {
                menu_item.set_text(&item.label);
                menu_item.set_enabled(item.enabled);
            }
        }
        if let Err(e) = self.icon.set_tooltip(Some(&view.tooltip)) {
            tracing::debug!("cannot set the tooltip: {e}");
        }
        tracing::debug!(state = ?view.state, status = ?view.status, "view");
        self.shown = Some(view.clone());
    }
}

fn icon(state: TrayState) -> Result<Icon, String> {
    Icon::from_rgba(icons::rgba(state), icons::SIZE, icons::SIZE)
        .map_err(|e| format!("cannot make the {state:?} icon: {e}"))
}
