//! A loopback TCP proxy owned by the test, for cutting the network between clients and the broker.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Forwards `listen` to `target` until cut; while cut, every connection is dropped and new ones are
/// closed at once. Stops when dropped.
pub struct CutProxy {
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Every open pair, so a cut can close them all.
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Connections dropped by cuts.
    pub dropped: Arc<AtomicU64>,
}

impl CutProxy {
    /// Listens on `port` (chosen by the caller so the broker can advertise it) and forwards to `target`.
    pub fn start(port: u16, target: String) -> CutProxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the proxy port");
        listener.set_nonblocking(true).unwrap();
        let proxy = CutProxy { cut: Arc::default(), stop: Arc::default(), open: Arc::default(), dropped: Arc::default() };
        let (cut, stop, open) = (Arc::clone(&proxy.cut), Arc::clone(&proxy.stop), Arc::clone(&proxy.open));
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) if cut.load(Ordering::SeqCst) => drop(client),
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        if let Ok(server) = TcpStream::connect(&target) {
                            let mut open = open.lock().unwrap();
                            open.push(client.try_clone().unwrap());
                            open.push(server.try_clone().unwrap());
                            pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                            pump(server, client);
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        proxy
    }

    /// Drops every connection and refuses new ones until [`CutProxy::heal`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        for stream in open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Accepts connections again.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    if to.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
