//! The tray icon of the real app, in a real window on a private desktop session: the test serves
//! the StatusNotifierWatcher a tray host would (so the app's icon registers with it), reads the
//! icon's menu and tooltip over D-Bus with dbus-send, and clicks the menu's items as a tray host does.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::notifications::DesktopSession;
use crate::util::usagebill;

/// The tray host's side of StatusNotifierItem: it only records who registered.
struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: String, #[zbus(header)] header: zbus::message::Header<'_>) {
        // A bus name, or an object path on the caller's connection.
        let name = match header.sender() {
            Some(sender) if service.starts_with('/') => sender.to_string(),
            _ => service,
        };
        self.items.lock().unwrap().push(name);
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

fn dbus_send(session: &DesktopSession, destination: &str, path: &str, method: &str, args: &[&str]) -> String {
    let output = Command::new("dbus-send")
        .args([&format!("--bus={}", session.address), "--print-reply", &format!("--dest={destination}"), path, method])
        .args(args)
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `(id, label)` of each item of the icon's menu, from dbusmenu's layout as dbus-send prints it.
fn menu(session: &DesktopSession, item: &str) -> Vec<(i32, String)> {
    let layout = dbus_send(session, item, "/MenuBar", "com.canonical.dbusmenu.GetLayout", &["int32:0", "int32:-1", "array:string:"]);
    let mut items = Vec::new();
    let mut id = None;
    let mut lines = layout.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if let Some(number) = line.strip_prefix("int32 ") {
            id = number.parse().ok();
        } else if line == "string \"label\"" {
            let label = lines.next().and_then(|value| value.split_once("string \"")).map(|(_, rest)| rest.trim_end_matches('"').to_owned());
            if let (Some(id), Some(label)) = (id, label) {
                items.push((id, label));
            }
        }
    }
    items
}

fn click(session: &DesktopSession, item: &str, label: &str) {
    let menu = menu(session, item);
    let (id, _) = menu.iter().find(|(_, shown)| shown == label).unwrap_or_else(|| panic!("no {label:?} in the tray menu {menu:?}"));
    let reply = dbus_send(
        session,
        item,
        "/MenuBar",
        "com.canonical.dbusmenu.Event",
        &[&format!("int32:{id}"), "string:clicked", "variant:int32:0", "uint32:0"],
    );
    assert!(!reply.contains("Error"), "{reply}");
}

fn tooltip(session: &DesktopSession, item: &str) -> String {
    dbus_send(
        session,
        item,
        "/StatusNotifierItem",
        "org.freedesktop.DBus.Properties.Get",
        &["string:org.kde.StatusNotifierItem", "string:ToolTip"],
    )
}

/// Asks the app's window to close as a window manager's close button does: a WM_DELETE_WINDOW
/// message (Xvfb runs no window manager, so the test sends it, through libX11 from Python).
fn close_window(session: &DesktopSession) {
    let search = Command::new("xdotool").args(["search", "--name", "^usagebill$"]).env("DISPLAY", &session.display).output();
    let search = search.unwrap_or_else(|error| panic!("cannot run xdotool ({error}): apt-get install xdotool (./scripts/test.sh does)"));
    let window = String::from_utf8_lossy(&search.stdout).lines().next().unwrap_or_default().trim().to_owned();
    assert!(!window.is_empty(), "no usagebill window on {}", session.display);
    let script = r#"
import ctypes, sys
x = ctypes.cdll.LoadLibrary("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XInternAtom.restype = ctypes.c_ulong
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x.XFlush.argtypes = [ctypes.c_void_p]
class Message(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]
class Event(ctypes.Union):
    _fields_ = [("message", Message), ("pad", ctypes.c_long * 24)]
display = x.XOpenDisplay(None)
event = Event()
event.message.type = 33  # ClientMessage
event.message.window = int(sys.argv[1])
event.message.message_type = x.XInternAtom(display, b"WM_PROTOCOLS", 0)
event.message.format = 32
event.message.data[0] = x.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
x.XSendEvent(display, int(sys.argv[1]), 0, 0, ctypes.byref(event))
x.XFlush(display)
"#;
    let status =
        Command::new("python3").args(["-c", script, &window]).env("DISPLAY", &session.display).stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "sending WM_DELETE_WINDOW failed");
}

/// Starts the real app on `session`'s display and bus with `config` (TOML) in `data`.
fn start_app(session: &DesktopSession, data: &std::path::Path, config: &str) -> Child {
    std::fs::write(data.join("config.toml"), config).unwrap();
    usagebill(data)
        .env("DISPLAY", &session.display)
        .env("DBUS_SESSION_BUS_ADDRESS", &session.address)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `app` to exit by itself within `within`.
fn exits(app: &mut Child, within: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = app.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn until(what: &str, within: Duration, app: &mut Child, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(app.try_wait().unwrap().is_none(), "the app exited while waiting for {what}");
        assert!(Instant::now() < deadline, "{what} did not happen within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_tray_menu_sends_pauses_and_quits_the_running_app() {
    let session = DesktopSession::start();
    let items = Arc::new(Mutex::new(Vec::new()));
    let _watcher = zbus::blocking::connection::Builder::address(session.address.as_str())
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", Watcher { items: Arc::clone(&items) })
        .unwrap()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut app = start_app(&session, data.path(), "[agent]\nmachine_id = \"desk-tray\"\nsend_interval = \"1h\"\n");
    until("the icon's registration", Duration::from_secs(30), &mut app, || !items.lock().unwrap().is_empty());
    let item = items.lock().unwrap()[0].clone();
    let labels: Vec<String> = menu(&session, &item).into_iter().map(|(_, label)| label).collect();
    assert_eq!(labels, ["Send now", "Pause", "Open", "Quit"]);
    assert!(tooltip(&session, &item).contains("record(s) waiting in the outbox"), "{}", tooltip(&session, &item));

    // Send now bills the open window into the local ledger (embedded mode), once the agent has
    // read the machine for a few seconds (an empty window is not a record).
    std::thread::sleep(Duration::from_secs(3));
    click(&session, &item, "Send now");
    let ledger = data.path().join("ledger.db");
    until("a record billed from the tray", Duration::from_secs(30), &mut app, || !super::billed(&ledger, "desk-tray").is_empty());
    // Pause: the menu offers Resume, and the tooltip says sending is paused.
    click(&session, &item, "Pause");
    until("Resume in the menu", Duration::from_secs(10), &mut app, || menu(&session, &item).iter().any(|(_, label)| label == "Resume"));
    assert!(tooltip(&session, &item).contains("sending paused"), "{}", tooltip(&session, &item));
    click(&session, &item, "Resume");
    until("Pause in the menu again", Duration::from_secs(10), &mut app, || menu(&session, &item).iter().any(|(_, label)| label == "Pause"));
    // Closing the window keeps the app running in the tray.
    close_window(&session);
    std::thread::sleep(Duration::from_secs(3));
    assert!(app.try_wait().unwrap().is_none(), "closing the window quit the app although a tray host is there");
    assert!(!menu(&session, &item).is_empty(), "the icon is still in the tray");
    // Quit ends the app, which closes its last window into the outbox or the ledger first.
    click(&session, &item, "Quit");
    let status = exits(&mut app, Duration::from_secs(20), "the app did not quit from the tray");
    assert!(status.success(), "{status}");
    assert!(super::billed(&ledger, "desk-tray").len() >= 2, "the window open at Quit was billed too");
}

#[test]
fn without_a_tray_host_closing_the_window_quits() {
    let session = DesktopSession::start();
    let data = tempfile::tempdir().unwrap();
    let mut app = start_app(&session, data.path(), "[agent]\nmachine_id = \"desk-no-tray\"\n");
    until("the window", Duration::from_secs(30), &mut app, || {
        let search = Command::new("xdotool").args(["search", "--name", "^usagebill$"]).env("DISPLAY", &session.display).output();
        search.is_ok_and(|output| output.status.success())
    });
    std::thread::sleep(Duration::from_secs(2));
    close_window(&session);
    let status = exits(&mut app, Duration::from_secs(20), "the app did not quit when its window closed without a tray host");
    assert!(status.success(), "{status}");
}
